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
// found by its "://"; its authority ends at the first '/', '?' or '#', or
// at the first character that url.Parse accepts in no authority (a space,
// a double quote, a backquote, '<', '>'...); its user info is what lies
// before the authority's last '@', as url.Parse reads it. Characters that
// often close a URL in prose or code (a single quote, ')', ',', ';') do
// not end it: url.Parse takes them as part of a user name or password, so
// "http://u:p,w@h" has the password "p,w". Text without "://" is returned
// as is, at the cost of one search.
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

// endsAuthority reports whether r cannot be part of a URL's authority as
// url.Parse reads it: user info is letters, digits, "-._~!$&'()*+,;=:%@",
// and a host adds '[' and ']'.
func endsAuthority(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("-._~!$&'()*+,;=:%@[]", r)
}
