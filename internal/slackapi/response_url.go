package slackapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrResponseURLRefused: a response_url points somewhere Slack never hands
// out. Slack's signature covers what reaches the ingress, but anyone who can
// publish on NATS can put any URL in a message; posting to it would let them
// make a worker call internal addresses.
var ErrResponseURLRefused = errors.New("response_url is not one of Slack's")

// ProductionResponseURLs allows Slack's response_url host, over https only.
var ProductionResponseURLs = ResponseURLPolicy{Origins: []string{"https://hooks.slack.com"}}

// ResponseURLPolicy says where a worker may post an answer given as a
// response_url: exactly the listed origins (scheme, host and port), nothing
// else, no user info.
type ResponseURLPolicy struct {
	// Origins are "scheme://host[:port]"; a default port may be left out.
	Origins []string
}

// ResponseURLPolicyFor returns the policy that goes with a Slack Web API base
// URL. Slack's own API (slack.com, or GovSlack's slack-gov.com) answers
// through https://hooks.<that domain> only. Any other API base is an emulator
// (dev, tests) or a proxy in front of Slack: its own origin is allowed as well,
// over its own scheme, beside https://hooks.slack.com.
func ResponseURLPolicyFor(apiURL string) (ResponseURLPolicy, error) {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ResponseURLPolicy{}, fmt.Errorf("slackapi: API URL %q is not an http(s) URL", apiURL)
	}
	host := strings.ToLower(u.Hostname())
	for _, domain := range []string{"slack.com", "slack-gov.com"} {
		if host == domain || strings.HasSuffix(host, "."+domain) {
			return ResponseURLPolicy{Origins: []string{"https://hooks." + domain}}, nil
		}
	}
	return ResponseURLPolicy{Origins: append(append([]string(nil), ProductionResponseURLs.Origins...), u.Scheme+"://"+u.Host)}, nil
}

// Check returns nil when raw may be posted to, else an error wrapping
// [ErrResponseURLRefused] that names the host at most: a response_url is a
// capability, and its path must not reach logs.
func (p ResponseURLPolicy) Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrResponseURLRefused)
	}
	o, ok := origin(u)
	switch {
	case !ok:
		return fmt.Errorf("%w: not an absolute http(s) URL", ErrResponseURLRefused)
	case u.User != nil:
		return fmt.Errorf("%w: it carries user info", ErrResponseURLRefused)
	}
	for _, allowed := range p.Origins {
		if a, err := url.Parse(allowed); err == nil {
			if ao, ok := origin(a); ok && ao == o {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s is not an allowed origin", ErrResponseURLRefused, o)
}

// origin is u's "scheme://host[:port]", lower case, without the scheme's
// default port; ok is false unless u is an absolute http or https URL.
func origin(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Opaque != "" || u.Host == "" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", false
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, true
}
