package main

import (
	"flag"
	"net/url"
	"os"
	"strings"
)

// secretFlag is a flag holding a secret (or a value that may carry one,
// like a database URL). Usage, --help and the errors of a mistyped flag
// show only what show returns, never the value itself: usage goes to
// stderr, which service managers keep in their logs.
type secretFlag struct {
	value string
	// given: set on the command line or in the environment, even if empty.
	given bool
	show  func(string) string
}

func (s *secretFlag) String() string {
	if s == nil || s.show == nil {
		return "" // the zero value flag.PrintDefaults builds to compare with
	}
	return s.show(s.value)
}

func (s *secretFlag) Set(v string) error {
	s.value, s.given = v, true
	return nil
}

// secretVar defines a secret flag with an environment twin. The variable
// counts as given when it exists at all, empty or not: a secret that was
// meant to be set and came out empty must not turn security off.
func secretVar(fs *flag.FlagSet, p *secretFlag, name, env, def, usage string, show func(string) string) {
	p.value, p.show = def, show
	if v, ok := os.LookupEnv(env); ok {
		p.value, p.given = v, true
	}
	fs.Var(p, name, usage+" (env "+env+")")
}

// showSet shows whether a secret is set, never its value.
func showSet(v string) string {
	if v == "" {
		return ""
	}
	return "(set, not shown)"
}

// showRedactedURL shows a URL without its password (user info or a
// password query parameter); a value that is not a URL but names a
// password (a key=value connection string) is not shown at all.
func showRedactedURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		if strings.Contains(strings.ToLower(v), "password") || strings.Contains(v, "@") {
			return "(set, not shown: it holds a password)"
		}
		return v
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if lk := strings.ToLower(k); lk == "password" || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// givenFlag reports whether a flag was set on the command line or its
// environment twin exists (empty or not).
func givenFlag(fs *flag.FlagSet, name, env string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	if _, ok := os.LookupEnv(env); ok {
		given = true
	}
	return given
}
