// Package slackapi is orgbridge's small layer over slack-go: a factory for
// slack-go clients that share one HTTP client and API URL, the Web API methods
// slack-go lacks (team.externalTeams.list and team.externalTeams.disconnect),
// and per-tier pacing shared by every replica through Redis ([Pacer]).
//
// Errors are slack-go's own types, so callers match them the same way whether
// the call went through slack-go or through this package:
// [slack.SlackErrorResponse] for an "ok": false answer, *[slack.RateLimitedError]
// (with RetryAfter) for HTTP 429, [slack.StatusCodeError] for any other non-200
// status, and *[TransportError] when no usable answer arrived (none at all, or
// an HTTP 200 whose body is not JSON).
package slackapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// DefaultAPIURL is Slack's Web API base.
const DefaultAPIURL = "https://slack.com/api/"

// defaultTimeout bounds a call whose context has no deadline.
const defaultTimeout = 30 * time.Second

// maxBody caps how much of an answer is read.
const maxBody = 8 << 20

// HTTPClient is what the client sends requests with: *http.Client, or anything
// with the same Do (it is the interface slack.OptionHTTPClient takes).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// Client calls the Slack Web API at one base URL with one HTTP client. It is
// safe for concurrent use; the token is given per call because one process
// serves many installations.
type Client struct {
	apiURL string
	hc     HTTPClient
}

// Option configures a [Client].
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (default: an *http.Client with a 30 s timeout).
func WithHTTPClient(hc HTTPClient) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("slackapi: nil HTTP client")
		}
		c.hc = hc
		return nil
	}
}

// New returns a Client for the Web API at apiURL ("" means [DefaultAPIURL];
// the emulator's is slackemu's APIURL()).
func New(apiURL string, opts ...Option) (*Client, error) {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("slackapi: API URL %q is not an http(s) URL", apiURL)
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	c := &Client{apiURL: apiURL, hc: &http.Client{Timeout: defaultTimeout}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// APIURL is the base URL the client calls.
func (c *Client) APIURL() string { return c.apiURL }

// Slack returns a slack-go client for token that uses the same API URL and
// HTTP client, for the methods slack-go has.
func (c *Client) Slack(token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(c.apiURL), slack.OptionHTTPClient(c.hc))
}

// TransportError is a call that got no usable HTTP answer (none, a body cut
// off, or a 200 that is not JSON). MaybeSent is false only
// when the connection could not even be made, so Slack cannot have acted on
// the request; otherwise (a timeout, a reset) it may have.
type TransportError struct {
	Method    string
	MaybeSent bool
	Err       error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("slackapi: calling %s: %v", e.Method, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Retryable reports that trying again can help.
func (e *TransportError) Retryable() bool { return true }

// Response is the raw answer of one call, kept for audit trails.
type Response struct {
	Method string
	Status int
	Body   json.RawMessage
}

// call POSTs form args to method with token as a bearer token and decodes the
// JSON answer into out. It returns the raw answer whenever one arrived.
func (c *Client) call(ctx context.Context, method, token string, args url.Values, out any) (Response, error) {
	resp := Response{Method: method}
	status, body, err := c.post(ctx, method, token, args)
	resp.Status = status
	if body != nil {
		resp.Body = jsonOrNil(body)
	}
	if err != nil {
		return resp, err
	}
	var sr slack.SlackResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		return resp, notJSON(method, err)
	}
	if err := answerError(sr); err != nil {
		return resp, err
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp, fmt.Errorf("slackapi: decoding %s answer: %w", method, err)
		}
	}
	return resp, nil
}

// post POSTs form args to method with token as a bearer token and returns the
// HTTP status and the body. A 429 is a *[slack.RateLimitedError], another
// non-200 a [slack.StatusCodeError] (the body is returned with both), no
// answer a *[TransportError]. Whether Slack said "ok" is the caller's to read
// ([answerError]).
func (c *Client) post(ctx context.Context, method, token string, args url.Values) (int, []byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+method, strings.NewReader(args.Encode()))
	if err != nil {
		return 0, nil, fmt.Errorf("slackapi: building %s request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	hr, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, &TransportError{Method: method, MaybeSent: !isDialError(err), Err: err}
	}
	defer hr.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxBody))
	if err != nil {
		return hr.StatusCode, nil, &TransportError{Method: method, MaybeSent: true, Err: err}
	}
	if hr.StatusCode == http.StatusTooManyRequests {
		secs, perr := strconv.ParseInt(strings.TrimSpace(hr.Header.Get("Retry-After")), 10, 64)
		if perr != nil || secs < 0 {
			secs = 60 // Slack always sends it; a minute is the safe guess without.
		}
		return hr.StatusCode, body, &slack.RateLimitedError{RetryAfter: time.Duration(secs) * time.Second}
	}
	if hr.StatusCode != http.StatusOK {
		return hr.StatusCode, body, slack.StatusCodeError{Code: hr.StatusCode, Status: hr.Status}
	}
	return hr.StatusCode, body, nil
}

// notJSON is an HTTP 200 whose body is not Slack's JSON (a proxy's page, a
// cut-off body): it says nothing about whether Slack acted, as good as no
// answer.
func notJSON(method string, err error) error {
	return &TransportError{Method: method, MaybeSent: true,
		Err: fmt.Errorf("answered HTTP 200 with something that is not JSON: %w", err)}
}

// answerError is the [slack.SlackErrorResponse] of an "ok": false answer, nil
// for an ok one.
func answerError(sr slack.SlackResponse) error {
	if sr.Ok {
		return nil
	}
	if strings.TrimSpace(sr.Error) == "" {
		sr.Error = "unknown_error"
	}
	return slack.SlackErrorResponse{Err: sr.Error, Errors: sr.Errors, ResponseMetadata: sr.ResponseMetadata, Needed: sr.Needed, Provided: sr.Provided}
}

func jsonOrNil(b []byte) json.RawMessage {
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	return nil
}

// isDialError reports whether err happened before any byte reached the server.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// ErrorCode is the Slack error code in err ("invalid_auth", "ratelimited" for
// HTTP 429, "http_503" for another status), or "" when err carries none.
func ErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "ratelimited"
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return "http_" + strconv.Itoa(sc.Code)
	}
	return ""
}
