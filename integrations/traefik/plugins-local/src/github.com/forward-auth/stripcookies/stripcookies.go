// Package stripcookies is a Traefik middleware plugin (run by Traefik's Go
// interpreter from plugins-local/) that removes forward-auth's cookies from
// the Cookie header the app receives. Put it after the forwardAuth
// middleware, which needs them. A cookie is ours when its name, without a
// __Host- or __Secure- prefix, starts with Prefix (forward-auth's
// COOKIE_NAME): the session cookie and the sign-in binding, in every
// spelling. When nothing is left the Cookie header is removed; several Cookie
// lines become one.
package stripcookies

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Config is the plugin's configuration in the dynamic configuration.
type Config struct {
	// Prefix is forward-auth's COOKIE_NAME.
	Prefix string `json:"prefix,omitempty"`
}

// CreateConfig gives the default: forward-auth's default COOKIE_NAME.
func CreateConfig() *Config {
	return &Config{Prefix: "_forward_auth"}
}

type stripCookies struct {
	next   http.Handler
	prefix string
}

// New makes the middleware; an empty prefix would match every cookie.
func New(_ context.Context, next http.Handler, config *Config, _ string) (http.Handler, error) {
	if strings.TrimSpace(config.Prefix) == "" {
		return nil, errors.New("stripcookies: prefix must name forward-auth's COOKIE_NAME, e.g. _forward_auth")
	}
	return &stripCookies{next: next, prefix: config.Prefix}, nil
}

func (s *stripCookies) ours(name string) bool {
	name = strings.TrimPrefix(name, "__Host-")
	name = strings.TrimPrefix(name, "__Secure-")
	return strings.HasPrefix(name, s.prefix)
}

func (s *stripCookies) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	lines := req.Header.Values("Cookie")
	if len(lines) > 0 {
		var kept []string
		for _, line := range lines {
			for _, pair := range strings.Split(line, ";") {
				pair = strings.TrimSpace(pair)
				if pair == "" {
					continue
				}
				name := pair
				if i := strings.IndexByte(pair, '='); i >= 0 {
					name = strings.TrimSpace(pair[:i])
				}
				if !s.ours(name) {
					kept = append(kept, pair)
				}
			}
		}
		req.Header.Del("Cookie")
		if len(kept) > 0 {
			req.Header.Set("Cookie", strings.Join(kept, "; "))
		}
	}
	s.next.ServeHTTP(rw, req)
}
