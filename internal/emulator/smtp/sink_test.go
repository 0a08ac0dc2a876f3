package smtpemu

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// send delivers raw through the sink with the standard library's client,
// a real SMTP conversation on loopback.
func send(t *testing.T, s *Sink, auth smtp.Auth, from string, to []string, raw string) error {
	t.Helper()
	return smtp.SendMail(s.Addr(), auth, from, to, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

func TestSinkCatchesMail(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		to          []string
		wantSubject string
		wantBody    string
	}{
		{
			name:        "plain text",
			raw:         "From: orgbridge <noreply@example.com>\nTo: ada@example.com\nSubject: Welcome\n\nHello Ada,\nwelcome aboard.\n",
			to:          []string{"ada@example.com"},
			wantSubject: "Welcome", wantBody: "Hello Ada,\nwelcome aboard.\n",
		},
		{
			name: "quoted-printable, encoded subject",
			raw: "From: noreply@example.com\nTo: zoe@example.com\nSubject: =?UTF-8?q?Bienvenue_=C3=A0_bord?=\nMIME-Version: 1.0\n" +
				"Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 au lait, a very long line that=\n continues here.\n",
			to:          []string{"zoe@example.com"},
			wantSubject: "Bienvenue à bord", wantBody: "Café au lait, a very long line that continues here.\n",
		},
		{
			name: "multipart: the text part, base64",
			raw: "From: noreply@example.com\nTo: a@example.com, b@example.com\nSubject: Two\nMIME-Version: 1.0\n" +
				"Content-Type: multipart/alternative; boundary=\"XyZ\"\n\n--XyZ\nContent-Type: text/html\n\n<p>html</p>\n" +
				"--XyZ\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nSGVsbG8gdGhl\ncmUh\n--XyZ--\n",
			to:          []string{"a@example.com", "b@example.com"},
			wantSubject: "Two", wantBody: "Hello there!",
		},
	}
	s := StartTest(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Clear()
			before := time.Now()
			if err := send(t, s, nil, "bounce@example.com", tc.to, tc.raw); err != nil {
				t.Fatal(err)
			}
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.From != "bounce@example.com" || !slices.Equal(m.To, tc.to) || m.Subject != tc.wantSubject || m.Body != tc.wantBody ||
				m.Received.Before(before) || m.Header["Subject"] == nil {
				t.Errorf("caught %+v\nwant subject %q body %q", m, tc.wantSubject, tc.wantBody)
			}
		})
	}
}

func TestSinkAuth(t *testing.T) {
	s := StartTest(t, WithAuth("mailer", "s3cret"))
	const raw = "Subject: hi\n\nbody\n"
	tests := []struct {
		name string
		auth smtp.Auth
		ok   bool
	}{
		{"right credentials", smtp.PlainAuth("", "mailer", "s3cret", "127.0.0.1"), true},
		{"wrong password", smtp.PlainAuth("", "mailer", "nope", "127.0.0.1"), false},
		{"no AUTH", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Clear()
			err := send(t, s, tc.auth, "a@example.com", []string{"b@example.com"}, raw)
			if (err == nil) != tc.ok || len(s.Messages()) != map[bool]int{true: 1, false: 0}[tc.ok] {
				t.Errorf("send = %v, %d caught; want ok=%v", err, len(s.Messages()), tc.ok)
			}
		})
	}
}

func TestSinkControlAPI(t *testing.T) {
	s := StartTest(t)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for _, to := range []string{"ada@example.com", "bob@example.com"} {
		if err := send(t, s, nil, "noreply@example.com", []string{to}, "Subject: for "+to+"\n\nx\n"); err != nil {
			t.Fatal(err)
		}
	}
	get := func(query string) []Mail {
		t.Helper()
		resp, err := http.Get(srv.URL + "/_emulator/mail" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Messages []Mail `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Messages == nil {
			t.Fatalf("GET: %d %v %+v", resp.StatusCode, err, out)
		}
		return out.Messages
	}
	tests := []struct {
		name, query string
		want        []string // subjects
	}{
		{"all", "", []string{"for ada@example.com", "for bob@example.com"}},
		{"to one address, any case", "?to=BOB@example.com", []string{"for bob@example.com"}},
		{"to nobody", "?to=eve@example.com", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{}
			for _, m := range get(tc.query) {
				got = append(got, m.Subject)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("subjects = %v, want %v", got, tc.want)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/_emulator/mail", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(get("")) != 0 || len(s.Messages()) != 0 {
		t.Errorf("DELETE: %d, then %d messages", resp.StatusCode, len(s.Messages()))
	}
}

// TestSinkCloseEndsConnections: Close returns although a client holds an
// idle connection, the port stops answering, and a second Close is harmless.
func TestSinkCloseEndsConnections(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	buf := make([]byte, 512)
	if n, err := idle.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "220 ") {
		t.Fatalf("greeting = %q, %v", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with an idle client connected")
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(buf); err == nil {
		t.Errorf("the idle connection is still open")
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("the sink still accepts connections after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestSinkConcurrentSenders: parallel clients, every message kept (run with -race).
func TestSinkConcurrentSenders(t *testing.T) {
	s := StartTest(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			errs <- smtp.SendMail(s.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nbody\r\n"))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(s.Messages()); n != 20 {
		t.Errorf("%d messages kept, want 20", n)
	}
}

func TestStartRefusesBadAddress(t *testing.T) {
	if _, err := Start("not an address"); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Errorf("Start = %v", err)
	}
	var ne *net.OpError
	s := StartTest(t)
	_, err := Start(s.Addr())
	if !errors.As(err, &ne) {
		t.Errorf("Start on a taken port = %v, want the listen error", err)
	}
}
