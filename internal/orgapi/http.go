package orgapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

const maxResponse = 32 << 20

// withDefaultTimeout adds DefaultTimeout when ctx has no deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// do sends req and reads the whole body (bounded).
func do(hc *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("orgapi: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, fmt.Errorf("orgapi: reading %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return resp, body, nil
}

// errorFrom turns a non-2xx answer into an *APIError (or *RateLimitedError),
// reading an OAuth error, a REST API error list, a SCIM error or a plain-text body.
func errorFrom(resp *http.Response, body []byte) error {
	e := &APIError{Status: resp.StatusCode}
	var probe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		ScimType    string `json:"scimType"`
		Detail      string `json:"detail"`
	}
	var rest []struct { // the REST API's [{"message": …, "errorCode": …}]
		Message   string `json:"message"`
		ErrorCode string `json:"errorCode"`
	}
	if json.Unmarshal(body, &rest) == nil && len(rest) > 0 {
		e.Code, e.Description = rest[0].ErrorCode, rest[0].Message
	} else if json.Unmarshal(body, &probe) == nil {
		switch {
		case probe.Error != "":
			e.Code, e.Description = probe.Error, probe.Description
		default:
			e.Code, e.Description = probe.ScimType, probe.Detail
		}
	} else if s := strings.TrimSpace(string(body)); len(s) > 0 && len(s) <= 200 {
		e.Code = s
	}
	if e.Code == "" && e.Description == "" {
		e.Description = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return &RateLimitedError{Retry: retryAfter(resp.Header, time.Now()), Err: e}
	}
	return e
}
