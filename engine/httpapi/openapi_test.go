package httpapi

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/spur-gearman/spur/engine"
)

// Every route the mux serves is in the OpenAPI document, and the document has no other.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	a := newAPI(newEngine(t, engine.Config{}), Options{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r := do(t, a, call{method: "GET", path: "/api/openapi.json"}).want(t, 200, "")
	if err := json.Unmarshal([]byte(r.raw), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := append([]string(nil), a.patterns...)
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("documented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	// Every $ref names a schema the document has.
	var all struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	json.Unmarshal([]byte(r.raw), &all)
	for _, part := range strings.Split(r.raw, `"$ref": "#/components/schemas/`)[1:] {
		name := part[:strings.IndexByte(part, '"')]
		if _, ok := all.Components.Schemas[name]; !ok {
			t.Errorf("$ref to a missing schema %q", name)
		}
	}
}
