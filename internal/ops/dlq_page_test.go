package ops

import (
	"fmt"
	"testing"

	"github.com/orgbridge/orgbridge/events"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// parkMany parks n dead letters of consumer from fresh SLACK messages and
// returns their ids.
func parkMany(t *testing.T, n *testenv.NATS, consumer string, count int) []uint64 {
	t.Helper()
	seqs := publishEvents(t, n.JS, subjMsg, "page-"+consumer, count)
	ids := make([]uint64, count)
	for i, seq := range seqs {
		ids[i] = parkFromStream(t, n.JS, events.StreamSlack, seq, consumer, fmt.Sprintf("failure %d", i))
	}
	return ids
}

// TestListDeadLetterPage walks a DLQ a page at a time, with and without a
// filter: every dead letter once, in order, the counts and positions right,
// and the choices a filter has counted per consumer.
func TestListDeadLetterPage(t *testing.T) {
	n := testenv.StartStreams(t)
	binding := parkMany(t, n, "binding", 7)
	captureAdvisory(t, n.JS, events.StreamSlack, "binding") // not a dead letter: never listed
	mapping := parkMany(t, n, "mapping", 4)
	all := append(append([]uint64{}, binding...), mapping...)

	tests := []struct {
		name   string
		filter DLQFilter
		want   []uint64
	}{
		{name: "all", want: all},
		{name: "one consumer", filter: DLQFilter{Consumer: "binding"}, want: binding},
		{name: "stream and consumer", filter: DLQFilter{Stream: events.StreamSlack, Consumer: "mapping"}, want: mapping},
		{name: "nothing matches", filter: DLQFilter{Stream: events.StreamOrg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			after, pages := uint64(0), 0
			for {
				page, err := ListDeadLetterPage(testCtx(t), n.JS, tt.filter, after, 3)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if page.Total != uint64(len(tt.want)) || page.Before != uint64(len(got)) {
					t.Fatalf("page %d: total %d, before %d; want %d, %d", pages, page.Total, page.Before, len(tt.want), len(got))
				}
				if len(page.Letters) > 3 {
					t.Fatalf("page %d holds %d letters, limit 3", pages, len(page.Letters))
				}
				for _, d := range page.Letters {
					got = append(got, d.ID)
				}
				want := []ParkedCount{{Stream: events.StreamSlack, Consumer: "binding", Count: 7}, {Stream: events.StreamSlack, Consumer: "mapping", Count: 4}}
				if fmt.Sprint(page.Parked) != fmt.Sprint(want) {
					t.Fatalf("parked counts %v, want %v", page.Parked, want)
				}
				if page.Next == 0 {
					break
				}
				if page.Next != page.Letters[len(page.Letters)-1].ID {
					t.Fatalf("next %d is not the page's last id", page.Next)
				}
				after = page.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("listed %v, want %v", got, tt.want)
			}
			if wantPages := max(1, (len(tt.want)+2)/3); pages != wantPages {
				t.Fatalf("%d pages, want %d", pages, wantPages)
			}
		})
	}
	if _, err := ListDeadLetterPage(testCtx(t), n.JS, DLQFilter{}, 0, 0); err == nil {
		t.Fatal("a page without a limit was accepted")
	}
}

// TestRedriveAllAcrossPages re-drives more dead letters than one page holds:
// every one once, and nothing left.
func TestRedriveAllAcrossPages(t *testing.T) {
	n := testenv.StartStreams(t)
	ids := parkMany(t, n, "binding", redrivePage+redrivePage/2)
	before := streamMsgs(t, n.JS, events.StreamSlack)
	sum, err := RedriveAll(testCtx(t), n.JS, DLQFilter{Consumer: "binding"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Redriven != len(ids) || sum.Failed != 0 || len(sum.Results) != len(ids) {
		t.Fatalf("summary: %d re-driven, %d failed, %d results; want %d", sum.Redriven, sum.Failed, len(sum.Results), len(ids))
	}
	seen := map[uint64]bool{}
	for _, r := range sum.Results {
		if seen[r.ID] {
			t.Fatalf("dead letter %d re-driven twice", r.ID)
		}
		seen[r.ID] = true
	}
	if got := streamMsgs(t, n.JS, events.StreamSlack); got != before+uint64(len(ids)) {
		t.Fatalf("SLACK holds %d, want %d", got, before+uint64(len(ids)))
	}
	page, err := ListDeadLetterPage(testCtx(t), n.JS, DLQFilter{}, 0, 10)
	if err != nil || page.Total != 0 || len(page.Letters) != 0 {
		t.Fatalf("left in the DLQ: %+v, %v", page, err)
	}
}
