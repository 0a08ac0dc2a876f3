package bench

import (
	"context"
	"testing"
	"time"
)

// TestIngressRunsEveryPhase checks the benchmark's machinery, not speed: every
// phase is driven, the ingress accepts every signed event the generator makes
// (a signing or routing mistake would show as errors), and the report is the
// median round's.
func TestIngressRunsEveryPhase(t *testing.T) {
	for _, newConn := range []bool{false, true} {
		rep, err := Ingress(context.Background(), IngressOptions{
			Concurrency: 4, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond, Rounds: 3, NewConnEach: newConn,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rounds) != 3 {
			t.Fatalf("%d rounds reported, want 3", len(rep.Rounds))
		}
		for _, r := range []Result{rep.HTTPFloor, rep.Ingress, rep.BarePublish} {
			if r.Requests == 0 || r.Errors != 0 {
				t.Fatalf("new connections %v: phase %q: %d ok, %d errors", newConn, r.Name, r.Requests, r.Errors)
			}
		}
		if rep.RatioToHTTP() <= 0 || rep.RatioToPublish() <= 0 {
			t.Fatalf("ratios not computed: %v %v", rep.RatioToHTTP(), rep.RatioToPublish())
		}
	}
}

func TestEventFactorySignsWhatItSends(t *testing.T) {
	f := newEventFactory("s3cret", 600)
	a, sigA, ts := f.body(1)
	b, sigB, _ := f.body(2)
	// The size is reached with a 20-digit event id; shorter ids make it a little smaller.
	if len(a) < 570 || len(a) > 600 {
		t.Fatalf("body of %d bytes, want just under 600", len(a))
	}
	if string(a) == string(b) || sigA == sigB {
		t.Fatal("two events share a body or signature: event ids are not unique")
	}
	if ts == "" || len(sigA) != len("v0=")+64 {
		t.Fatalf("signature headers %q %q", sigA, ts)
	}
}
