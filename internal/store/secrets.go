package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/secret"
)

// Secret errors.
var (
	// ErrNoKeys: no encryption key is configured, so secrets cannot be stored.
	ErrNoKeys = errors.New("store: no encryption keys (set ORGBRIDGE_ENCRYPTION_KEYS to id:base64key[,id:base64key…])")
	// ErrUnknownKey: a value was sealed under a key id the keyring does not hold
	// (a key was removed from ORGBRIDGE_ENCRYPTION_KEYS before `orgbridge keys rotate` ran).
	ErrUnknownKey = errors.New("store: value is sealed under a key that is not configured")
	// ErrOpen: the cipher text does not authenticate (tampered, or sealed for another purpose).
	ErrOpen = errors.New("store: sealed value does not authenticate")
	// ErrBadState: an OAuth state is unknown, used, expired or not signed by us.
	ErrBadState = errors.New("store: OAuth state is invalid, expired or already used")
)

// Secret is a plain-text secret in memory (a token, a refresh token, an OAuth
// code): [secret.Secret], which never prints, logs or encodes its value.
type Secret = secret.Secret

// Sealed is a value encrypted with AES-256-GCM under the key KeyID names.
// Ciphertext is base64(nonce || sealed). The key id travels beside the cipher
// text so keys can rotate: every configured key decrypts, the first encrypts.
type Sealed struct {
	KeyID      string `json:"kid"`
	Ciphertext string `json:"ct"`
}

// IsZero reports whether nothing is sealed.
func (s Sealed) IsZero() bool { return s.Ciphertext == "" }

// Keyring holds the encryption keys from ORGBRIDGE_ENCRYPTION_KEYS.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
	macKeys map[string][]byte
	order   []string
}

// ParseKeyring reads "id:base64key[,id:base64key…]"; each key is 32 bytes
// (AES-256) in standard or URL base64. The first key encrypts; all decrypt.
func ParseKeyring(spec string) (*Keyring, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, ErrNoKeys
	}
	k := &Keyring{aeads: map[string]cipher.AEAD{}, macKeys: map[string][]byte{}}
	for i, part := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || id == "" || strings.ContainsAny(id, " :") {
			return nil, fmt.Errorf("store: encryption key %d: want id:base64key", i+1)
		}
		raw, err := decodeB64(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("store: encryption key %q: want 32 bytes of base64 (openssl rand -base64 32)", id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("store: encryption key id %q appears twice", id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("store: encryption key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("store: encryption key %q: %w", id, err)
		}
		mac := hmac.New(sha256.New, raw)
		mac.Write([]byte("orgbridge oauth state v1"))
		k.aeads[id], k.macKeys[id] = aead, mac.Sum(nil)
		k.order = append(k.order, id)
		if i == 0 {
			k.primary = id
		}
	}
	return k, nil
}

func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// GenerateKeySpec returns a fresh "id:base64key" entry for ORGBRIDGE_ENCRYPTION_KEYS.
func GenerateKeySpec(id string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return id + ":" + base64.StdEncoding.EncodeToString(b[:])
}

// PrimaryID is the id of the key new values are sealed under.
func (k *Keyring) PrimaryID() string { return k.primary }

// Seal encrypts plain under the primary key. aad binds the cipher text to its
// purpose (for example "install:A1:E1:T1:bot"), so a value copied into another
// record does not open there.
func (k *Keyring) Seal(plain Secret, aad string) (Sealed, error) {
	if plain == "" {
		return Sealed{}, nil
	}
	aead := k.aeads[k.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("store: nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return Sealed{KeyID: k.primary, Ciphertext: base64.StdEncoding.EncodeToString(out)}, nil
}

// Open decrypts s, which must have been sealed with the same aad.
func (k *Keyring) Open(s Sealed, aad string) (Secret, error) {
	if s.IsZero() {
		return "", nil
	}
	aead, ok := k.aeads[s.KeyID]
	if !ok {
		return "", fmt.Errorf("%w (key id %q)", ErrUnknownKey, s.KeyID)
	}
	raw, err := base64.StdEncoding.DecodeString(s.Ciphertext)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", ErrOpen
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", ErrOpen
	}
	return Secret(plain), nil
}

// Reseal re-encrypts s under the primary key when it is sealed under another
// one; changed reports whether it did.
func (k *Keyring) Reseal(s Sealed, aad string) (out Sealed, changed bool, err error) {
	if s.IsZero() || s.KeyID == k.primary {
		return s, false, nil
	}
	plain, err := k.Open(s, aad)
	if err != nil {
		return s, false, err
	}
	out, err = k.Seal(plain, aad)
	return out, err == nil, err
}

// Sign returns an HMAC of msg under the primary key, prefixed with its key id.
func (k *Keyring) Sign(msg string) string {
	m := hmac.New(sha256.New, k.macKeys[k.primary])
	m.Write([]byte(msg))
	return k.primary + "." + hex.EncodeToString(m.Sum(nil)[:16])
}

// Verify checks a signature made by [Keyring.Sign] under any configured key.
func (k *Keyring) Verify(msg, sig string) bool {
	id, mac, ok := strings.Cut(sig, ".")
	key, known := k.macKeys[id]
	if !ok || !known {
		return false
	}
	want, err := hex.DecodeString(mac)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return hmac.Equal(m.Sum(nil)[:16], want)
}

// OAuth states and outcomes. A state is self-contained: its kind, a random
// nonce, its expiry and its data, signed with the keyring (HMAC), so issuing
// one writes nothing (an unauthenticated GET cannot fill Redis). It is made
// single-use at the callback by a SET NX on its nonce that lives as long as
// the state would. An outcome is what the worker decided, which the browser's
// callback waits for.

// StateTTL is how long an OAuth state stays valid.
const StateTTL = 10 * time.Minute

// OAuthStates issues and checks OAuth states and carries outcomes from the
// workers back to the HTTP callback that waits for them.
type OAuthStates struct {
	rdb  redis.Cmdable
	keys *Keyring
	now  atomic.Pointer[func() time.Time]
}

// NewOAuthStates returns an OAuthStates over rdb, signing with keys.
func NewOAuthStates(rdb redis.Cmdable, keys *Keyring) *OAuthStates {
	return &OAuthStates{rdb: rdb, keys: keys}
}

// SetClock replaces the clock states are issued and checked with (nil: the
// real one); tests use it to expire states.
func (o *OAuthStates) SetClock(now func() time.Time) {
	if now == nil {
		o.now.Store(nil)
		return
	}
	o.now.Store(&now)
}

func (o *OAuthStates) clock() time.Time {
	if f := o.now.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

func stateKey(nonce string) string   { return Key(GlobalTenant, "oauth", "state", nonce) }
func outcomeKey(nonce string) string { return Key(GlobalTenant, "oauth", "outcome", nonce) }

// statePayload is what a state carries, before its signature.
type statePayload struct {
	Kind    string          `json:"k"`
	Nonce   string          `json:"n"`
	Expires int64           `json:"x"` // unix milliseconds
	Data    json.RawMessage `json:"d,omitempty"`
}

// Issue returns a new state for kind ("slack" or "org") carrying data, to send
// to the authorize URL. Nothing is stored.
func (o *OAuthStates) Issue(_ context.Context, kind string, data any) (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	body, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	p, _ := json.Marshal(statePayload{Kind: kind, Nonce: base64.RawURLEncoding.EncodeToString(b[:]),
		Expires: o.clock().Add(StateTTL).UnixMilli(), Data: body})
	enc := base64.RawURLEncoding.EncodeToString(p)
	return enc + "." + o.keys.Sign(kind+"."+enc), nil
}

// StateNonce returns the nonce (the flow id) a state carries, without
// checking it; use [OAuthStates.Verify] before trusting it.
func StateNonce(state string) string {
	enc, _, _ := strings.Cut(state, ".")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return ""
	}
	var p statePayload
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	return p.Nonce
}

// Verify checks state's signature, kind and expiry and decodes its data into
// v, without using it up. It returns the state's nonce, which identifies the flow.
func (o *OAuthStates) Verify(kind, state string, v any) (string, error) {
	p, err := o.verify(kind, state)
	if err != nil {
		return "", err
	}
	if v != nil && len(p.Data) > 0 {
		if err := json.Unmarshal(p.Data, v); err != nil {
			return "", fmt.Errorf("store: decoding OAuth state: %w", err)
		}
	}
	return p.Nonce, nil
}

func (o *OAuthStates) verify(kind, state string) (*statePayload, error) {
	enc, sig, ok := strings.Cut(state, ".")
	if !ok || enc == "" || !o.keys.Verify(kind+"."+enc, sig) {
		return nil, ErrBadState
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, ErrBadState
	}
	var p statePayload
	if err := json.Unmarshal(raw, &p); err != nil || p.Kind != kind || p.Nonce == "" {
		return nil, ErrBadState
	}
	if !o.clock().Before(time.UnixMilli(p.Expires)) {
		return nil, ErrBadState
	}
	return &p, nil
}

// Spend uses state up (a verified state can be spent once): [ErrBadState]
// when it was spent before or is no longer valid.
func (o *OAuthStates) Spend(ctx context.Context, kind, state string) error {
	p, err := o.verify(kind, state)
	if err != nil {
		return err
	}
	left := time.UnixMilli(p.Expires).Sub(o.clock())
	if left < time.Millisecond {
		return ErrBadState
	}
	ok, err := o.rdb.SetNX(ctx, stateKey(p.Nonce), kind, left).Result()
	if err != nil {
		return fmt.Errorf("store: recording OAuth state used: %w", err)
	}
	if !ok {
		return ErrBadState
	}
	return nil
}

// Consume verifies state ([OAuthStates.Verify]), uses it up
// ([OAuthStates.Spend]) and decodes its data into v. It returns the state's
// nonce, which identifies the flow.
func (o *OAuthStates) Consume(ctx context.Context, kind, state string, v any) (string, error) {
	nonce, err := o.Verify(kind, state, v)
	if err != nil {
		return "", err
	}
	if err := o.Spend(ctx, kind, state); err != nil {
		return "", err
	}
	return nonce, nil
}

// Outcome is what a worker decided about one OAuth flow.
type Outcome struct {
	OK      bool   `json:"ok"`
	Title   string `json:"title"`
	Message string `json:"message"`
}

// PutOutcome records the outcome of flow nonce; it is kept for StateTTL. The
// first outcome wins, so a replayed message cannot overwrite it.
func (o *OAuthStates) PutOutcome(ctx context.Context, nonce string, out Outcome) error {
	b, _ := json.Marshal(out)
	if err := o.rdb.SetNX(ctx, outcomeKey(nonce), b, StateTTL).Err(); err != nil {
		return fmt.Errorf("store: saving OAuth outcome: %w", err)
	}
	return nil
}

// GetOutcome returns the outcome of flow nonce, or ok=false while there is none.
func (o *OAuthStates) GetOutcome(ctx context.Context, nonce string) (Outcome, bool, error) {
	raw, err := o.rdb.Get(ctx, outcomeKey(nonce)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, err
	}
	var out Outcome
	if err := json.Unmarshal(raw, &out); err != nil {
		return Outcome{}, false, err
	}
	return out, true, nil
}

// WaitOutcome polls for the outcome of flow nonce until it exists or ctx ends.
func (o *OAuthStates) WaitOutcome(ctx context.Context, nonce string) (Outcome, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		out, ok, err := o.GetOutcome(ctx, nonce)
		if err != nil && ctx.Err() == nil {
			return Outcome{}, err
		}
		if ok {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-t.C:
		}
	}
}

// TicketTTL is how long a "connect" button stays usable.
const TicketTTL = 30 * time.Minute

func ticketKey(id string) string { return Key(GlobalTenant, "oauth", "ticket", id) }

// IssueTicket stores data behind a random id for TicketTTL: the id goes into a
// "connect" button's URL, and the OAuth state is issued only when the browser
// follows it, so the 10-minute state starts when the user clicks.
func (o *OAuthStates) IssueTicket(ctx context.Context, data any) (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	body, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	if err := o.rdb.Set(ctx, ticketKey(id), body, TicketTTL).Err(); err != nil {
		return "", fmt.Errorf("store: saving ticket: %w", err)
	}
	return id, nil
}

// Ticket reads the data of ticket id into v and uses the ticket up (a
// "connect" link works once); [ErrBadState] when it is unknown, expired or used.
func (o *OAuthStates) Ticket(ctx context.Context, id string, v any) error {
	if id == "" {
		return ErrBadState
	}
	raw, err := o.rdb.GetDel(ctx, ticketKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrBadState
	}
	if err != nil {
		return fmt.Errorf("store: reading ticket: %w", err)
	}
	return json.Unmarshal(raw, v)
}
