package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
)

// slackRetryDelays is Slack's retry schedule for events that got no 2xx
// within 3 seconds: about at once, after a minute, after five minutes.
var slackRetryDelays = []time.Duration{0, time.Minute, 5 * time.Minute}

// slackTimeout is how long Slack waits for an answer before it counts the
// attempt failed.
const slackTimeout = 3 * time.Second

// sender plays Slack: signed requests to the ingress, each event retried on
// Slack's schedule (compressed by the time scale) until it gets a 2xx.
type sender struct {
	client *http.Client
	base   string // the ingress, http://host:port
	secret string
	delays []time.Duration

	mu       sync.Mutex
	acked    map[string]bool
	retried  map[string]bool // events that needed at least one retry
	refused  map[string]int  // hostile request → status
	attempts int
	wg       sync.WaitGroup
}

func newSender(base, secret string, timeScale float64) *sender {
	delays := make([]time.Duration, len(slackRetryDelays))
	for i, d := range slackRetryDelays {
		delays[i] = time.Duration(float64(d) / timeScale)
	}
	return &sender{
		client: &http.Client{Timeout: slackTimeout, Transport: &http.Transport{
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		}},
		base: base, secret: secret, delays: delays,
		acked: map[string]bool{}, retried: map[string]bool{}, refused: map[string]int{},
	}
}

// post makes one signed attempt and reports the status, or the reason Slack
// would give for a retry when no answer came.
func (s *sender) post(ctx context.Context, path, contentType string, body []byte, retry int, reason string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, "unknown_error"
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", slackemu.Sign(s.secret, ts, body))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", reason)
	}
	s.mu.Lock()
	s.attempts++
	s.mu.Unlock()
	resp, err := s.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, "http_timeout"
		}
		return 0, "connection_failed"
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, "http_error"
}

// event sends one Events API request in the background, retrying as Slack
// does; the event counts as acknowledged once an attempt gets a 2xx.
func (s *sender) event(ctx context.Context, id string, body []byte) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		status, reason := s.post(ctx, "/slack/events", "application/json", body, 0, "")
		for i := 0; ; i++ {
			if status >= 200 && status < 300 {
				s.mu.Lock()
				s.acked[id] = true
				s.mu.Unlock()
				return
			}
			if i == len(s.delays) || ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.delays[i]):
			}
			s.mu.Lock()
			s.retried[id] = true
			s.mu.Unlock()
			status, reason = s.post(ctx, "/slack/events", "application/json", body, i+1, reason)
		}
	}()
}

// hostile sends a request that must be refused, once, and records its status.
func (s *sender) hostile(ctx context.Context, name, path, contentType string, body []byte) int {
	status, _ := s.post(ctx, path, contentType, body, 0, "")
	s.mu.Lock()
	s.refused[name] = status
	s.mu.Unlock()
	return status
}

// wait blocks until every event has been acknowledged or given up on.
func (s *sender) wait() { s.wg.Wait() }

func (s *sender) isAcked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

func (s *sender) wasRetried(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retried[id]
}

// userChange is a signed user_change event deactivating a user: the mapping
// worker revokes the user's mappings and records the message processed, so
// its effect can be counted in Redis.
func userChange(team, eventID, user string) []byte {
	return fmt.Appendf(nil, `{"token":"chaos","team_id":%q,"api_app_id":"A0EMULATOR","type":"event_callback","event_id":%q,`+
		`"event_time":%d,"authorizations":[{"team_id":%q,"user_id":"U0BOT","is_bot":true}],`+
		`"event":{"type":"user_change","user":{"id":%q,"team_id":%q,"name":"chaos","deleted":true}}}`,
		team, eventID, time.Now().Unix(), team, user, team)
}

// load sends rate events a second for d, each a user_change for team, and
// returns their ids. It does not wait for retries: see [sender.wait].
func (s *sender) load(ctx context.Context, team string, run, rate int, d time.Duration) []string {
	const tick = 10 * time.Millisecond
	total := int(float64(rate) * d.Seconds())
	ids := make([]string, 0, total)
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	for len(ids) < total {
		// As many as the rate allows by now: ticks that came late catch up.
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+1)
		for len(ids) < due {
			n := len(ids)
			id := fmt.Sprintf("EvC%02d%07d", run, n)
			s.event(ctx, id, userChange(team, id, fmt.Sprintf("U%02d%07d", run, n)))
			ids = append(ids, id)
		}
		select {
		case <-ctx.Done():
			return ids
		case <-t.C:
		}
	}
	return ids
}
