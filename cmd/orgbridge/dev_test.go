package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// devStack is one `orgbridge dev` run in-process.
type devStack struct {
	inv      *invocation
	cancel   context.CancelFunc
	httpAddr string
	natsURL  string
	redisURL string
	secret   string
}

// startDev starts `orgbridge dev` with env and waits until it is ready. The
// addresses come from freeAddr, which another test's server may take
// before dev binds them: then dev is started again on fresh ones (env is
// updated in place, so a later restart reuses the addresses that worked).
func startDev(t *testing.T, env map[string]string) *devStack {
	t.Helper()
	for attempt := 1; ; attempt++ {
		d, exited := tryDev(t, env)
		if d != nil {
			return d
		}
		if attempt < 3 && strings.Contains(exited, "address already in use") {
			for k := range env {
				if strings.HasSuffix(k, "_ADDR") {
					env[k] = freeAddr(t)
				}
			}
			continue
		}
		t.Fatalf("orgbridge dev exited:\n%s", exited)
	}
}

// tryDev starts dev once; it returns the stack, or what dev printed when it
// exited before it was ready.
func tryDev(t *testing.T, env map[string]string) (*devStack, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inv := invoke(ctx, env, "dev")
	d := &devStack{inv: inv, cancel: cancel, httpAddr: env["ORGBRIDGE_HTTP_ADDR"]}
	exited := ""
	testenv.Eventually(t, 20*time.Second, func() bool {
		select {
		case code := <-inv.code:
			exited = fmt.Sprintf("exit %d:\n%s%s", code, inv.stdout, inv.stderr)
			return true
		default:
		}
		resp, err := http.Get("http://" + d.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "orgbridge dev never became ready:\n%s", inv.stderr)
	if exited != "" {
		cancel()
		return nil, exited
	}
	t.Cleanup(func() { d.stop(t) })
	out := inv.stdout.String()
	d.natsURL = regexp.MustCompile(`NATS\s+(nats://\S+)`).FindStringSubmatch(out)[1]
	d.redisURL = regexp.MustCompile(`Redis\s+(redis://\S+)`).FindStringSubmatch(out)[1]
	secret, err := os.ReadFile(filepath.Join(env["ORGBRIDGE_DATA_DIR"], "dev-signing-secret"))
	if err != nil {
		t.Fatal(err)
	}
	d.secret = strings.TrimSpace(string(secret))
	return d, ""
}

// stop sends the equivalent of SIGTERM and waits for a clean exit.
func (d *devStack) stop(t *testing.T) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case code := <-d.inv.code:
		if code != 0 {
			t.Errorf("orgbridge dev exited with %d:\n%s", code, d.inv.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("orgbridge dev did not stop within 30s")
	}
}

func (d *devStack) postEvent(t *testing.T, eventID string) int {
	t.Helper()
	body := fmt.Sprintf(`{"type":"event_callback","team_id":"T1","event":{"type":"app_mention"},"event_id":%q}`, eventID)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(d.secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.httpAddr+"/slack/events", strings.NewReader(body))
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

func TestDevStateSurvivesRestart(t *testing.T) {
	env := map[string]string{
		"ORGBRIDGE_DATA_DIR":            t.TempDir(),
		"ORGBRIDGE_HTTP_ADDR":           freeAddr(t),
		"ORGBRIDGE_NATS_ADDR":           freeAddr(t),
		"ORGBRIDGE_LOG_LEVEL":           "warn",
		"ORGBRIDGE_SLACK_EMULATOR_ADDR": freeAddr(t),
		"ORGBRIDGE_ORG_EMULATOR_ADDR":   freeAddr(t),
		"ORGBRIDGE_SMTP_EMULATOR_ADDR":  freeAddr(t),
	}
	first := startDev(t, env)
	if code := first.postEvent(t, "EvDurable1"); code != 200 {
		t.Fatalf("event answered %d", code)
	}
	// The Slack emulator dev started signs with the same secret and delivers to this ingress.
	emulator := "http://" + env["ORGBRIDGE_SLACK_EMULATOR_ADDR"]
	resp, err := http.Get(emulator + "/_emulator/world")
	if err != nil {
		t.Fatal(err)
	}
	var world struct{ Workspaces []struct{ ID string } }
	if err := json.NewDecoder(resp.Body).Decode(&world); err != nil || len(world.Workspaces) == 0 {
		t.Fatalf("emulator world: %v %+v", err, world)
	}
	resp.Body.Close()
	resp, err = http.Post(emulator+"/_emulator/deliver/event", "application/json",
		strings.NewReader(`{"team_id":"`+world.Workspaces[0].ID+`","event":{"type":"app_home_opened","tab":"home"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var delivered struct {
		EventID string `json:"event_id"`
		Status  int    `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&delivered); err != nil || delivered.Status != 200 {
		t.Fatalf("emulator delivery to the dev ingress: %+v %v", delivered, err)
	}
	resp.Body.Close()
	rdb := redis.NewClient(mustParseRedis(t, first.redisURL))
	if err := rdb.Set(context.Background(), "ob:{T1}:restart-probe", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Close()
	first.stop(t)
	// The child redis-server is gone with it.
	rdb = redis.NewClient(mustParseRedis(t, first.redisURL))
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatalf("redis-server child still answers after orgbridge dev stopped")
	}
	rdb.Close()

	second := startDev(t, env)
	if second.secret != first.secret {
		t.Fatalf("the generated signing secret changed across restarts")
	}
	nc, err := nats.Connect(second.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(context.Background(), events.StreamSlack)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream after restart: %v, %+v; want the 2 events stored before it", err, info)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), "slack.events.T1.app_mention")
	if err != nil || msg.Header.Get(events.HeaderMsgID) != "EvDurable1" {
		t.Fatalf("event stored before the restart is gone: %v %v", err, msg)
	}
	rdb = redis.NewClient(mustParseRedis(t, second.redisURL))
	defer rdb.Close()
	if v, err := rdb.Get(context.Background(), "ob:{T1}:restart-probe").Result(); err != nil || v != "kept" {
		t.Fatalf("Redis state lost across restart: %q %v", v, err)
	}
	// Slack retrying the same event after the restart still lands once.
	if code := second.postEvent(t, "EvDurable1"); code != 200 {
		t.Fatalf("retry answered %d", code)
	}
	info, _ = stream.Info(context.Background())
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after a retry across restarts, want 2", info.State.Msgs)
	}
}

func mustParseRedis(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
