package smart

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Scope is one SMART clinical scope: a context (patient, user or system), a resource type ("*"
// for all), the interactions it permits (SMART v2: c create, r read, u update, d delete, s
// search) and, for granular scopes, search parameters the resources must match
// (patient/Observation.rs?category=laboratory).
type Scope struct {
	Context string
	Type    string
	Perms   string
	Params  url.Values
}

// String is the scope in SMART v2 syntax.
func (s Scope) String() string {
	out := s.Context + "/" + s.Type + "." + s.Perms
	if len(s.Params) > 0 {
		out += "?" + s.Params.Encode()
	}
	return out
}

// Allows reports whether the scope permits interaction perm (one of "cruds") on resourceType.
func (s Scope) Allows(resourceType string, perm byte) bool {
	return (s.Type == "*" || s.Type == resourceType) && strings.IndexByte(s.Perms, perm) >= 0
}

// granularParams are the search parameters a granular scope may restrict by.
var granularParams = []string{"category"}

// maxScopes bounds the scopes of one request.
const maxScopes = 32

// ParseScope reads a clinical scope in SMART v2 syntax (context/Type.cruds[?param=value]) or v1
// syntax (.read, .write, .*, mapped to rs, cud and cruds). Other scopes (openid, launch, ...)
// are not clinical: ok is false with no error.
func ParseScope(s string) (Scope, bool, error) {
	ctx, rest, found := strings.Cut(s, "/")
	if !found || !slices.Contains([]string{"patient", "user", "system"}, ctx) {
		return Scope{}, false, nil
	}
	rest, query, _ := strings.Cut(rest, "?")
	typ, perms, found := strings.Cut(rest, ".")
	if !found || typ == "" {
		return Scope{}, false, fmt.Errorf("scope %q: want context/Type.permissions", s)
	}
	switch perms {
	case "read":
		perms = "rs"
	case "write":
		perms = "cud"
	case "*":
		perms = "cruds"
	}
	if perms == "" || !inOrder(perms, "cruds") {
		return Scope{}, false, fmt.Errorf("scope %q: permissions are a subset of cruds, in that order", s)
	}
	if typ != "*" && !validType(typ) {
		return Scope{}, false, fmt.Errorf("scope %q: %q is not a resource type", s, typ)
	}
	sc := Scope{Context: ctx, Type: typ, Perms: perms}
	if query != "" {
		params, err := url.ParseQuery(query)
		if err != nil {
			return Scope{}, false, fmt.Errorf("scope %q: %w", s, err)
		}
		for k, v := range params {
			if !slices.Contains(granularParams, k) || len(v) != 1 || v[0] == "" {
				return Scope{}, false, fmt.Errorf("scope %q: a granular scope restricts by %s, once each", s, strings.Join(granularParams, ", "))
			}
		}
		sc.Params = params
	}
	return sc, true, nil
}

// inOrder reports whether s is a subsequence of all without repeats.
func inOrder(s, all string) bool {
	i := 0
	for j := 0; j < len(s); j++ {
		k := strings.IndexByte(all[i:], s[j])
		if k < 0 {
			return false
		}
		i += k + 1
	}
	return true
}

func validType(t string) bool {
	if len(t) > 64 || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// ParseScopes reads a space-separated scope string: its clinical scopes, and the others as given
// (launch/patient, openid, offline_access ...).
func ParseScopes(s string) (clinical []Scope, other []string, err error) {
	fields := strings.Fields(s)
	if len(fields) > maxScopes {
		return nil, nil, fmt.Errorf("at most %d scopes", maxScopes)
	}
	for _, f := range fields {
		sc, ok, err := ParseScope(f)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			clinical = append(clinical, sc)
		} else {
			other = append(other, f)
		}
	}
	return clinical, other, nil
}

// Within is what of the requested scopes the allowed ones cover: for each requested scope and
// each allowed scope of its context that covers its type (and parameters), the requested scope
// with its permissions cut to the allowed one's and the allowed one's parameters. A requested
// scope broader than every allowed one is narrowed, or dropped.
func Within(requested, allowed []Scope) []Scope {
	var out []Scope
	for _, r := range requested {
		for _, a := range allowed {
			if a.Context != r.Context || (a.Type != "*" && a.Type != r.Type) {
				continue
			}
			perms := ""
			for i := 0; i < len(r.Perms); i++ {
				if strings.IndexByte(a.Perms, r.Perms[i]) >= 0 {
					perms += string(r.Perms[i])
				}
			}
			params := r.Params
			if len(a.Params) > 0 { // the allowed restriction holds whatever was asked
				params = a.Params
				if len(r.Params) > 0 && r.Params.Encode() != a.Params.Encode() {
					continue
				}
			}
			if perms != "" && !slices.ContainsFunc(out, func(o Scope) bool { return o.String() == (Scope{r.Context, r.Type, perms, params}).String() }) {
				out = append(out, Scope{Context: r.Context, Type: r.Type, Perms: perms, Params: params})
			}
		}
	}
	return out
}

// Join is scopes as a space-separated string.
func Join(scopes []Scope, other ...string) string {
	parts := slices.Clone(other)
	for _, s := range scopes {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, " ")
}
