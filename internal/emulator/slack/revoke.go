package slackemu

// apiAuthRevoke is auth.revoke: it revokes the token the call is made with
// (Tier 3, no scope needed) and answers {"revoked": true}. With test=1 (or
// true) it only checks the token and answers {"revoked": false}. Later calls
// with a revoked token fail with token_revoked. Revoking one token does not
// uninstall the app and sends no event; apps.uninstall does both.
func (e *Emulator) apiAuthRevoke(c *apiCall) (map[string]any, error) {
	switch c.arg("test") {
	case "1", "true":
		return map[string]any{"revoked": false}, nil
	}
	c.tok.revoked = true
	return map[string]any{"revoked": true}, nil
}
