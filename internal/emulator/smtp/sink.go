// Package smtpemu is an SMTP sink for tests and dev mode: a real SMTP server
// (github.com/emersion/go-smtp) that accepts every message and keeps it in
// memory instead of delivering it, with a control API to read and clear what
// it caught. orgbridge's mailer points at it when no mail server is
// configured, so invitation mail can be checked without sending any.
package smtpemu

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Limits of what the sink accepts and keeps.
const (
	MaxMessageBytes = 10 << 20
	MaxRecipients   = 100
	// MaxKept is how many messages the sink keeps; older ones are dropped.
	MaxKept = 10_000
)

// Mail is one message the sink caught. From and To are the envelope (MAIL
// FROM and RCPT TO, the addresses the client sent to); Subject is decoded
// (RFC 2047); Body is the text of the message — the text/plain part of a
// multipart message — with its transfer encoding undone and line ends as
// "\n". Header holds every header as sent.
type Mail struct {
	From     string              `json:"from"`
	To       []string            `json:"to"`
	Subject  string              `json:"subject"`
	Body     string              `json:"body"`
	Header   map[string][]string `json:"header"`
	Received time.Time           `json:"received"`
}

// Sink is a running SMTP sink. Its methods are safe for concurrent use.
type Sink struct {
	srv  *smtp.Server
	ln   *trackingListener
	log  *slog.Logger
	auth *credentials

	served chan struct{} // closed when Serve returned
	once   sync.Once
	err    error

	mu   sync.Mutex
	msgs []Mail
}

type credentials struct{ username, password string }

// Option configures [Start].
type Option func(*Sink)

// WithLogger logs each caught message (sender, recipients, subject; never
// the body) and the SMTP server's errors to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// WithAuth makes the sink require AUTH (PLAIN or LOGIN) with these
// credentials before it accepts mail; without it any credentials, or none,
// are accepted.
func WithAuth(username, password string) Option {
	return func(s *Sink) { s.auth = &credentials{username, password} }
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves SMTP
// until [Sink.Close].
func Start(addr string, opts ...Option) (*Sink, error) {
	s := &Sink{log: slog.New(slog.DiscardHandler), served: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpemu: cannot listen on %s: %w", addr, err)
	}
	s.ln = &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "orgbridge-smtp-sink"
	s.srv.MaxMessageBytes = MaxMessageBytes
	s.srv.MaxRecipients = MaxRecipients
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = log.New(slogWriter{s.log}, "", 0)
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("smtpemu: serve ended", "error", err)
		}
	}()
	return s, nil
}

// StartTest starts a sink on a free loopback port and closes it when the test ends.
func StartTest(t testing.TB, opts ...Option) *Sink {
	t.Helper()
	s, err := Start("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("smtpemu: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("smtpemu: close: %v", err)
		}
	})
	return s
}

// Addr is the address the sink listens on (host:port).
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Close stops accepting connections, closes the open ones and waits for
// every goroutine of the sink to end. It is safe to call more than once.
func (s *Sink) Close() error {
	s.once.Do(func() {
		s.ln.closeAll() // the listener and every accepted connection
		<-s.served
		// Serve has returned: every connection goroutine is counted; the
		// server's Shutdown waits for them (their connections are closed).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			s.err = fmt.Errorf("smtpemu: waiting for connections to end: %w", err)
		}
	})
	return s.err
}

// Messages returns what the sink caught, oldest first.
func (s *Sink) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.msgs...)
}

// Clear forgets every message.
func (s *Sink) Clear() {
	s.mu.Lock()
	s.msgs = nil
	s.mu.Unlock()
}

func (s *Sink) keep(m Mail) {
	s.log.Info("smtpemu: caught mail", "from", m.From, "to", m.To, "subject", m.Subject)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	if over := len(s.msgs) - MaxKept; over > 0 {
		s.msgs = append(s.msgs[:0:0], s.msgs[over:]...)
	}
}

// Handler serves the control API: GET /_emulator/mail answers
// {"messages": [...]} (optionally only those to ?to=address), DELETE
// /_emulator/mail forgets them all (204).
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_emulator/mail", func(w http.ResponseWriter, r *http.Request) {
		msgs := s.Messages()
		if to := r.URL.Query().Get("to"); to != "" {
			kept := msgs[:0]
			for _, m := range msgs {
				for _, rcpt := range m.To {
					if strings.EqualFold(rcpt, to) {
						kept = append(kept, m)
						break
					}
				}
			}
			msgs = kept
		}
		if msgs == nil {
			msgs = []Mail{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": msgs})
	})
	mux.HandleFunc("DELETE /_emulator/mail", func(w http.ResponseWriter, r *http.Request) {
		s.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// ---- SMTP sessions ----

type session struct {
	sink   *Sink
	authed bool
	from   string
	to     []string
}

func (s *Sink) newSession(*smtp.Conn) (smtp.Session, error) { return &session{sink: s}, nil }

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if c := ss.sink.auth; c != nil && (username != c.username || password != c.password) {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, username, password string) error { return check(username, password) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.auth != nil && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "the message cannot be read: " + err.Error()}
	}
	m.From, m.To, m.Received = ss.from, append([]string(nil), ss.to...), time.Now()
	ss.sink.keep(m)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// loginServer is the LOGIN mechanism (not in go-sasl's server side): the
// server asks for the username, then the password.
type loginServer struct {
	check    func(username, password string) error
	username string
	step     int
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) > 0 { // initial response carries the username
			l.username = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(response))
	}
}

// ---- parsing ----

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	if strings.EqualFold(charset, "us-ascii") || strings.EqualFold(charset, "iso-8859-1") {
		return input, nil // close enough for a test sink
	}
	return nil, fmt.Errorf("charset %s not supported", charset)
}}

// parse reads a message: headers with net/mail, the subject decoded, the
// body's text found and decoded.
func parse(raw []byte) (Mail, error) {
	msg, err := mail.ReadMessage(bufio.NewReader(strings.NewReader(string(raw))))
	if err != nil {
		return Mail{}, fmt.Errorf("reading headers: %w", err)
	}
	m := Mail{Header: map[string][]string(msg.Header)}
	m.Subject, err = wordDecoder.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		m.Subject = msg.Header.Get("Subject")
	}
	body, err := textOf(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return Mail{}, err
	}
	m.Body = strings.ReplaceAll(body, "\r\n", "\n")
	return m, nil
}

// textOf is the text of a body: itself when it is text, the first text/plain
// part (depth first) when it is multipart.
func textOf(contentType, encoding string, body io.Reader) (string, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if contentType == "" || err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return "", nil
			}
			if err != nil {
				return "", fmt.Errorf("reading a MIME part: %w", err)
			}
			ct := p.Header.Get("Content-Type")
			if mt, _, _ := mime.ParseMediaType(ct); ct != "" && mt != "text/plain" && !strings.HasPrefix(mt, "multipart/") {
				continue
			}
			text, err := textOf(ct, p.Header.Get("Content-Transfer-Encoding"), p)
			if err != nil || text != "" {
				return text, err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &stripSpace{r: body})
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("decoding the %s body: %w", encoding, err)
	}
	return string(b), nil
}

// stripSpace drops the line breaks inside base64 text.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	k := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[k] = c
			k++
		}
	}
	return k, err
}

// ---- plumbing ----

// trackingListener remembers every connection it accepted, so Close can end
// them all (go-smtp's own Close can miss one accepted a moment before).
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	_ = l.Listener.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// slogWriter turns go-smtp's log lines into warnings.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("smtpemu: " + strings.TrimSpace(string(p)))
	return len(p), nil
}
