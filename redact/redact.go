// Package redact hides the passwords of URLs (http://user:PASSWORD@host/)
// in whatever lifecycled prints: logs, the hook log, the termination
// message, /readyz?verbose, metric labels, one-line errors. A URL given
// to --wait, --ready or a hook may carry credentials, and so may every
// error that names it (net/http's, a redirect's target); those outputs
// land in pod status, on shared volumes and behind --listen.
//
// The rule is url.URL.Redacted's: the password becomes "xxxxx", the user
// name stays, so a reader still sees which URL and which account.
package redact

import "strings"

// Mask is what a password is replaced with, as url.URL.Redacted has it.
const Mask = "xxxxx"

// URLs returns s with the password of every URL in it masked. A URL is
// found by its "://"; its authority ends at the first '/', '?', '#', a
// space, a quote or a closing bracket, and its user info is what lies
// before the authority's last '@', as url.Parse reads it. Text without
// "://" is returned as is, at the cost of one search.
func URLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		start := i + len("://")
		end := start + strings.IndexFunc(rest[start:], endsAuthority)
		if end < start { // no end: the authority runs to the end of s
			end = len(rest)
		}
		auth := rest[start:end]
		at := strings.LastIndexByte(auth, '@')
		colon := strings.IndexByte(auth, ':')
		b.WriteString(rest[:start])
		if at >= 0 && colon >= 0 && colon < at {
			b.WriteString(auth[:colon+1])
			b.WriteString(Mask)
			b.WriteString(auth[at:])
		} else {
			b.WriteString(auth)
		}
		rest = rest[end:]
	}
	b.WriteString(rest)
	return b.String()
}

func endsAuthority(r rune) bool {
	switch r {
	case '/', '?', '#', ' ', '\t', '\n', '\r', '"', '\'', '`', '<', '>', ')', ']', '}', '\\', ',', ';':
		return true
	}
	return false
}
