package slackapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/slack-go/slack"

	slackemu "github.com/orgbridge/orgbridge/internal/emulator/slack"
)

// BenchmarkDecodeUsersPage decodes one users.list page of 999 users as
// ListUsers does and as slack-go does (a json.Decoder into []slack.User),
// the answer read once from the emulator, so only decoding is measured.
func BenchmarkDecodeUsersPage(b *testing.B) {
	emu := slackemu.StartTest(b, slackemu.Config{Users: 999, Workspaces: 1, Enterprises: -1, DisableRateLimits: true})
	tok, err := emu.MintToken(slackemu.TokenRequest{})
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.PostForm(emu.APIURL()+MethodUsersList, url.Values{"token": {tok.Token}, "limit": {"999"}})
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ListUsers", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for range b.N {
			if p, err := decodeUsersPage(body); err != nil || len(p.Users) < 999 {
				b.Fatal(err)
			}
		}
	})
	b.Run("slack-go", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for range b.N {
			var p struct {
				Members []slack.User `json:"members"`
			}
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&p); err != nil || len(p.Members) < 999 {
				b.Fatal(err)
			}
		}
	})
}
