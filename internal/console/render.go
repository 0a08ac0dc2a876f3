package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/orgbridge/orgbridge/internal/orgapi"
)

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"dur": func(d time.Duration) string {
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(time.Second).String()
	},
	"join": strings.Join,
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"add": func(a, b int) int { return a + b },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"trimq": func(s string) string { return strings.TrimPrefix(s, "?") },
	"counts": func(m map[string]int) []countItem {
		var out []countItem
		for k, n := range m {
			if n > 0 {
				out = append(out, countItem{k, n})
			}
		}
		slices.SortFunc(out, func(a, b countItem) int { return strings.Compare(a.Key, b.Key) })
		return out
	},
	"query": func(base string, kv ...any) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			switch v := kv[i+1].(type) {
			case []string:
				for _, s := range v {
					q.Add(fmt.Sprint(kv[i]), s)
				}
			default:
				if s := fmt.Sprint(v); s != "" && s != "0" {
					q.Set(fmt.Sprint(kv[i]), s)
				}
			}
		}
		if len(q) == 0 {
			return base
		}
		return base + "?" + q.Encode()
	},
}

type countItem struct {
	Key string
	N   int
}

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page inside the layout (or only its "content" block for an
// htmx request that asks for a fragment with HX-Target).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, s *Session, data map[string]any) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "console: no page "+page, http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Session"] = s
	data["Prefix"] = Prefix
	data["Path"] = r.URL.Path
	name := "layout"
	if frag, _ := data["Fragment"].(string); frag != "" && r.Header.Get("HX-Request") != "" {
		name = frag
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		c.log.Error("console: rendering", "page", page, "error", err)
		http.Error(w, "console: rendering "+page+" failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func orgCallback(q url.Values) (code, state string, err error) { return orgapi.ParseCallback(q) }
