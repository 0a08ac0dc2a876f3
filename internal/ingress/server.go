// Package ingress is orgbridge's HTTP front door for Slack: it verifies every
// request, publishes it to JetStream, and answers only once the stream has
// acknowledged it. Nothing else happens on the request path; workers do the rest.
package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/orgbridge/orgbridge/events"
)

// Publisher is the part of jetstream.JetStream the ingress needs: an
// asynchronous publish, so concurrent requests pipeline their publishes on one
// connection while each waits only for its own acknowledgement.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Server serves Slack's requests.
type Server struct {
	cfg     Config
	pub     Publisher
	log     *slog.Logger
	budget  *byteBudget
	metrics *metrics
	routes  routes
	// draining is set once a shutdown has begun (see [Server.Drain]).
	draining atomic.Bool
}

// Route names, used in metrics and logs.
const (
	routeEvents       = "events"
	routeCommands     = "commands"
	routeInteractions = "interactivity"
)

// unavailableText is what a user sees when a command or interaction could not be
// stored: Slack shows it as an ephemeral message instead of "dispatch_failed".
const unavailableText = "orgbridge is temporarily unavailable and did not receive this. Please try again in a minute."

// New returns a Server publishing through pub. Metrics go to reg (nil: none).
func New(cfg Config, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	budget := &byteBudget{limit: cfg.MaxBodyBytesInFlight}
	s := &Server{cfg: cfg, pub: pub, log: logger, budget: budget, metrics: newMetrics(reg, budget), routes: newRoutes()}
	s.Mount("POST /slack/events", s.slackRoute(routeEvents, s.handleEvents))
	s.Mount("POST /slack/commands", s.slackRoute(routeCommands, s.handleCommands))
	s.Mount("POST /slack/interactivity", s.slackRoute(routeInteractions, s.handleInteractivity))
	s.mountHealth()
	return s, nil
}

// request is one verified Slack request on its way to the stream.
type request struct {
	route      string
	body       []byte
	requestID  string
	receivedAt time.Time
}

// slackRoute wraps a handler of verified requests: it reads and verifies the
// request, and gives the body's bytes back to the in-flight budget once the
// handler has answered.
func (s *Server) slackRoute(route string, h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, held, ok := s.readVerified(w, r, route)
		defer s.budget.give(held)
		if ok {
			h(w, r, req)
		}
	}
}

// readVerified checks what it can before reading the body (the declared
// length, the signature headers and the timestamp's window), then reads the
// body under the cap and the in-flight budget and checks Slack's signature over
// it. On failure it has already answered the request and returns false; held is
// what it took from the budget, to give back in any case.
func (s *Server) readVerified(w http.ResponseWriter, r *http.Request, route string) (_ *request, held int64, _ bool) {
	req := &request{route: route, receivedAt: time.Now(), requestID: nuid.Next()}
	w.Header().Set("X-Request-Id", req.requestID)
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.refuseUnread(w, route, http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		return nil, 0, false
	}
	// Everything but the HMAC itself can be checked from the headers: an
	// unsigned or stale request is refused without reading its body.
	sv, err := slack.NewSecretsVerifier(r.Header, s.cfg.SigningSecret)
	if err != nil {
		s.refuseUnread(w, route, http.StatusUnauthorized, "%s", signatureProblem(err))
		return nil, 0, false
	}
	body, held, err := readBody(w, r, s.cfg.MaxBodyBytes, s.budget)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			s.fail(w, route, http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		case errors.Is(err, errBusy):
			s.busy(w, route)
		default:
			s.fail(w, route, http.StatusBadRequest, "could not read the request body")
		}
		return nil, held, false
	}
	_, _ = sv.Write(body)
	if err := sv.Ensure(); err != nil {
		s.fail(w, route, http.StatusUnauthorized, "%s", signatureProblem(err))
		return nil, held, false
	}
	req.body = body
	return req, held, true
}

// refuseUnread answers a request whose body was not read, and closes the
// connection after the answer rather than wait for a body nobody needs.
func (s *Server) refuseUnread(w http.ResponseWriter, route string, code int, format string, args ...any) {
	w.Header().Set("Connection", "close")
	s.fail(w, route, code, format, args...)
}

// busy answers a request the in-flight budget had no room for: at once, never
// queued. Slack retries an event that got a 5xx; a command or an interaction
// is not retried, so its user is told to try again, as when NATS is down.
func (s *Server) busy(w http.ResponseWriter, route string) {
	s.metrics.busy.Inc()
	w.Header().Set("Connection", "close")
	if route != routeEvents {
		s.unavailable(w, route)
		return
	}
	w.Header().Set("Retry-After", "1")
	s.fail(w, route, http.StatusServiceUnavailable, "too many requests in progress, please retry")
}

func signatureProblem(err error) string {
	switch {
	case errors.Is(err, slack.ErrMissingHeaders):
		return "missing X-Slack-Signature or X-Slack-Request-Timestamp header"
	case errors.Is(err, slack.ErrExpiredTimestamp):
		return "X-Slack-Request-Timestamp is more than 5 minutes from this server's clock"
	default:
		return "invalid Slack signature"
	}
}

// fail answers with a plain-text error written for the person reading it.
func (s *Server) fail(w http.ResponseWriter, route string, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
	s.metrics.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

func (s *Server) ok(w http.ResponseWriter, route string) {
	w.WriteHeader(http.StatusOK)
	s.metrics.ok[route].Inc()
}

// publish publishes msg and waits for the stream's acknowledgement, the request
// being cancelled, or the publish timeout, whichever comes first; within the
// timeout it publishes again while a stream elects its leader (see store). A subject
// events.ValidateSubject refuses is never sent (the handlers check the values
// it is built from first; this is the last line): one that overflows the
// server's control line would close the connection for good.
func (s *Server) publish(ctx context.Context, req *request, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	if err := events.ValidateSubject(msg.Subject); err != nil {
		return nil, err
	}
	h := msg.Header
	h.Set(events.HeaderSchema, "1")
	h.Set(events.HeaderReceivedAt, req.receivedAt.UTC().Format(time.RFC3339Nano))
	h.Set(events.HeaderRequestID, req.requestID)
	msg.Data = req.body
	start := time.Now()
	ack, err := s.store(ctx, msg, msgID)
	if err == nil {
		s.metrics.publishAck.WithLabelValues(req.route).Observe(time.Since(start).Seconds())
	}
	return ack, err
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, req *request) {
	env, err := parseEnvelope(req.body)
	if err != nil {
		s.fail(w, routeEvents, http.StatusBadRequest, "body is not a JSON Events API request: %v", err)
		return
	}
	switch env.Type {
	case "url_verification":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Challenge string `json:"challenge"`
		}{env.Challenge})
		s.metrics.requests.WithLabelValues(routeEvents, "200").Inc()
		return
	case "":
		s.fail(w, routeEvents, http.StatusBadRequest, "body has no \"type\" field")
		return
	}
	eventType, typeField := env.EventType, "event.type"
	if env.Type != "event_callback" {
		eventType, typeField = env.Type, "type" // app_rate_limited and any outer type Slack adds later
	}
	if eventType == "" {
		s.fail(w, routeEvents, http.StatusBadRequest, "event_callback has no event.type")
		return
	}
	if env.EventID == "" && env.Type == "event_callback" {
		s.fail(w, routeEvents, http.StatusBadRequest, "event_callback has no event_id")
		return
	}
	tenant := events.Tenant(env.TeamID, env.EnterpriseID)
	if tenant == "" {
		s.fail(w, routeEvents, http.StatusBadRequest, "event has neither team_id nor enterprise_id")
		return
	}
	if p := firstProblem(badID("team_id", env.TeamID), badID("enterprise_id", env.EnterpriseID),
		badType(typeField, eventType), badMsgID("event_id", env.EventID)); p != "" {
		s.fail(w, routeEvents, http.StatusBadRequest, "%s", p)
		return
	}
	if !knownEventTypes[eventType] {
		s.metrics.unknownTypes.Inc()
	}
	msgID := env.EventID
	if msgID == "" {
		msgID = "req:" + req.requestID
	}
	msg := newMsg(eventSubject(tenant, eventType))
	msg.Header.Set(events.HeaderContentType, "application/json")
	setTenant(msg.Header, env.TeamID, env.EnterpriseID)
	msg.Header.Set(events.HeaderType, eventType)
	if v := r.Header.Get(events.HeaderSlackRetryNum); v != "" {
		msg.Header.Set(events.HeaderSlackRetryNum, v)
		msg.Header.Set(events.HeaderSlackRetryReason, r.Header.Get(events.HeaderSlackRetryReason))
	}
	ack, err := s.publish(r.Context(), req, msg, msgID)
	if errors.Is(err, events.ErrInvalidSubject) {
		s.fail(w, routeEvents, http.StatusBadRequest, "event cannot be stored: %v", err)
		return
	}
	if err != nil {
		// Slack retries a non-2xx answer; the event id makes the retry land once.
		s.log.Warn("event not stored; answering 503 so Slack retries",
			"request_id", req.requestID, "event_id", env.EventID, "team", tenant, "err", err)
		s.fail(w, routeEvents, http.StatusServiceUnavailable, "event not stored, please retry")
		return
	}
	if ack.Duplicate {
		s.metrics.duplicates.Inc()
	}
	s.ok(w, routeEvents)
}

// eventSubject routes uninstall signals to their own subject so the binding
// worker sees them in order per tenant; everything else goes by type.
func eventSubject(tenant, eventType string) string {
	switch eventType {
	case "app_uninstalled", "tokens_revoked":
		return events.SlackUninstallSubject(tenant)
	}
	return events.SlackEventSubject(tenant, eventType)
}

// newMsg returns a message with room for every header the ingress sets, so the
// header map is allocated once.
func newMsg(subject string) *nats.Msg {
	return &nats.Msg{Subject: subject, Header: make(nats.Header, 10)}
}

func setTenant(h nats.Header, team, enterprise string) {
	if team != "" {
		h.Set(events.HeaderTeam, team)
	}
	if enterprise != "" {
		h.Set(events.HeaderEnterprise, enterprise)
	}
}

func (s *Server) handleCommands(w http.ResponseWriter, r *http.Request, req *request) {
	form, err := url.ParseQuery(string(req.body))
	if err != nil {
		s.fail(w, routeCommands, http.StatusBadRequest, "body is not a form-encoded slash command: %v", err)
		return
	}
	team, enterprise := form.Get("team_id"), form.Get("enterprise_id")
	command := form.Get("command")
	tenant := events.Tenant(team, enterprise)
	switch {
	case command == "":
		s.fail(w, routeCommands, http.StatusBadRequest, "slash command has no \"command\" field")
		return
	case tenant == "":
		s.fail(w, routeCommands, http.StatusBadRequest, "slash command has neither team_id nor enterprise_id")
		return
	case form.Get("user_id") == "":
		s.fail(w, routeCommands, http.StatusBadRequest, "slash command has no \"user_id\" field")
		return
	}
	if p := firstProblem(badID("team_id", team), badID("enterprise_id", enterprise), badID("api_app_id", form.Get("api_app_id")),
		badCommand(command), badMsgID("trigger_id", form.Get("trigger_id"))); p != "" {
		s.fail(w, routeCommands, http.StatusBadRequest, "%s", p)
		return
	}
	msg := newMsg(events.SlackCommandSubject(tenant))
	msg.Header.Set(events.HeaderContentType, "application/x-www-form-urlencoded")
	setTenant(msg.Header, team, enterprise)
	msg.Header.Set(events.HeaderType, command)
	s.publishInteractive(w, r, req, msg, form.Get("trigger_id"))
}

// interactionEnvelope holds the fields of an interactivity payload the ingress routes by.
type interactionEnvelope struct {
	Type      string `json:"type"`
	TriggerID string `json:"trigger_id"`
	APIAppID  string `json:"api_app_id"`
	Team      *struct {
		ID string `json:"id"`
	} `json:"team"`
	Enterprise *struct {
		ID string `json:"id"`
	} `json:"enterprise"`
	User *struct {
		TeamID string `json:"team_id"`
	} `json:"user"`
}

func (s *Server) handleInteractivity(w http.ResponseWriter, r *http.Request, req *request) {
	form, err := url.ParseQuery(string(req.body))
	if err != nil || form.Get("payload") == "" {
		s.fail(w, routeInteractions, http.StatusBadRequest, "body is not a form-encoded interactivity request with a \"payload\" field")
		return
	}
	var p interactionEnvelope
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
		s.fail(w, routeInteractions, http.StatusBadRequest, "payload is not JSON: %v", err)
		return
	}
	var team, userTeam, enterprise string
	if p.Team != nil {
		team = p.Team.ID
	}
	if p.User != nil {
		userTeam = p.User.TeamID
	}
	if p.Enterprise != nil {
		enterprise = p.Enterprise.ID
	}
	if problem := firstProblem(badID("team.id", team), badID("user.team_id", userTeam), badID("enterprise.id", enterprise),
		badID("api_app_id", p.APIAppID), badType("type", p.Type), badMsgID("trigger_id", p.TriggerID)); problem != "" {
		s.fail(w, routeInteractions, http.StatusBadRequest, "%s", problem)
		return
	}
	if team == "" {
		team = userTeam
	}
	tenant := events.Tenant(team, enterprise)
	switch {
	case p.Type == "":
		s.fail(w, routeInteractions, http.StatusBadRequest, "payload has no \"type\" field")
		return
	case tenant == "":
		s.fail(w, routeInteractions, http.StatusBadRequest, "payload has neither team.id nor enterprise.id")
		return
	}
	msg := newMsg(events.SlackInteractionSubject(tenant))
	msg.Header.Set(events.HeaderContentType, "application/x-www-form-urlencoded")
	setTenant(msg.Header, team, enterprise)
	msg.Header.Set(events.HeaderType, p.Type)
	s.publishInteractive(w, r, req, msg, p.TriggerID)
}

// publishInteractive stores a command or interaction. When it cannot be stored the
// user still gets 200 with an ephemeral explanation, never Slack's dispatch_failed.
func (s *Server) publishInteractive(w http.ResponseWriter, r *http.Request, req *request, msg *nats.Msg, triggerID string) {
	msgID := "req:" + req.requestID
	if triggerID != "" {
		msgID = "trigger:" + triggerID
	}
	_, err := s.publish(r.Context(), req, msg, msgID)
	if errors.Is(err, events.ErrInvalidSubject) {
		s.fail(w, req.route, http.StatusBadRequest, "request cannot be stored: %v", err)
		return
	}
	if err != nil {
		s.log.Warn("request not stored; told the user to try again",
			"route", req.route, "request_id", req.requestID, "subject", msg.Subject, "err", err)
		s.unavailable(w, req.route)
		return
	}
	s.ok(w, req.route)
}

// unavailable answers a command or interaction that could not be stored: 200
// with an ephemeral explanation, never Slack's dispatch_failed.
func (s *Server) unavailable(w http.ResponseWriter, route string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(unavailableBody)
	s.metrics.requests.WithLabelValues(route, "200_unavailable").Inc()
}

var unavailableBody = func() []byte {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(map[string]string{"response_type": "ephemeral", "text": unavailableText})
	return b.Bytes()
}()
