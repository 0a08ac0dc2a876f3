package ingress

import (
	"context"
	"errors"
	"time"
)

// DefaultMaxBodyBytes caps every Slack request body (Slack's own payloads are far smaller).
const DefaultMaxBodyBytes = 1 << 20

// Config configures a [Server].
type Config struct {
	// SigningSecret is the Slack app's signing secret.
	SigningSecret string
	// PublishTimeout bounds the wait for JetStream's acknowledgement. It must stay
	// below Slack's 3 s deadline. The JetStream instance handed to [New] should be
	// built with jetstream.WithPublishAsyncTimeout(PublishTimeout) so abandoned
	// acks are released; the server also enforces it on its own.
	PublishTimeout time.Duration
	// MaxBodyBytes caps request bodies; zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// Checks are run by GET /readyz; any error makes it answer 503.
	Checks map[string]func(context.Context) error
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 2 * time.Second
	}
}

// Validate reports a configuration the server cannot run with.
func (c Config) Validate() error {
	switch {
	case c.SigningSecret == "":
		return errors.New("ingress: a Slack signing secret is required")
	case c.PublishTimeout < 0 || c.PublishTimeout >= 3*time.Second:
		return errors.New("ingress: the publish timeout must be below Slack's 3s deadline")
	case c.MaxBodyBytes < 0:
		return errors.New("ingress: the body cap must not be negative")
	}
	return nil
}
