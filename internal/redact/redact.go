// Package redact hides the secrets of URLs in whatever lifecycled prints:
// logs, the hook log, the termination message, /readyz?verbose, metric
// labels, one-line errors, explain. A URL given to --wait, --ready or a
// hook may carry credentials, and so may every error that names it
// (net/http's, a redirect's target); those outputs land in pod status, on
// shared volumes and behind --listen.
//
// Two kinds of secret are masked:
//   - the password of a URL's user info (http://user:PASSWORD@host/), as
//     url.URL.Redacted has it: the password becomes "xxxxx", the user name
//     stays, so a reader still sees which URL and which account;
//   - the value of a query or fragment parameter whose name says it is a
//     secret (SecretName: ?token=, &password=, &X-Amz-Signature=, #access_token=...).
//
// URL masks one value that is known to be a URL as url.Parse splits it;
// URLs masks the URLs inside any text; Suffix masks the end of a text
// whose beginning was cut off.
package redact

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask is what a secret is replaced with, as url.URL.Redacted has it.
const Mask = "xxxxx"

// URLs returns s with the secrets of every URL in it masked.
//
// Passwords: a URL is found by its "://"; its authority ends at the first
// '/', '?' or '#', or at the first character that url.Parse accepts in no
// authority (a space, a double quote, a backquote, '<', '>'...); its user
// info is what lies before the authority's last '@', as url.Parse reads it.
// Characters that often close a URL in prose or code (a single quote, ')',
// ',', ';') do not end it: url.Parse takes them as part of a user name or
// password, so "http://u:p,w@h" has the password "p,w".
//
// Parameters: after every '?', '&', '#' or ';' (the query and fragment of a
// URL, with or without its scheme and host), NAME=VALUE has its VALUE masked
// when SecretName(NAME). VALUE runs to the next '&' (or a JSON-escaped
// "\u0026") or '#', or to the first character that ends a URL in text
// (white space, a control character, an unescaped double quote, '<', '>',
// a backquote): url.Parse takes almost anything in a query, so a value is
// masked too far rather than too short ("(x?token=abc), y" loses its ')').
//
// Text holding none of "://?&#;" is returned as is, at the cost of one search.
func URLs(s string) string {
	return params(passwords(s), false)
}

// URL returns s, one value that may be a URL (a target, a hook's URL, an
// argument of a command), with its secrets masked. When s starts with
// SCHEME://, it is split as url.Parse splits it, whatever characters it
// holds (a URL that url.Parse refuses, such as "http://u:p w@h/", in a
// usage error, is masked as its writer meant it): the user info is what
// lies before the last '@' ahead of the first '/', '?' or '#', and a
// parameter's value runs to the next '&' or '#' or the end of s. Any other
// s, and URLs nested in s, are masked as URLs does.
func URL(s string) string {
	i := schemeLen(s)
	if i < 0 {
		return URLs(s)
	}
	start := i + len("://")
	end := len(s)
	if j := strings.IndexAny(s[start:], "/?#"); j >= 0 {
		end = start + j
	}
	return URLs(s[:start] + userInfo(s[start:end]) + params(s[end:], true))
}

// Suffix returns s, the end of a longer text cut at an arbitrary byte,
// masked as URLs does; in addition its first word (up to the first
// character that ends a URL in text) becomes Mask, since it may be the rest
// of a URL whose "://" or parameter name was cut away ("KEN@host/",
// "en=abc"). Mask a text before cutting it where possible: Suffix is for
// the text that was cut before anyone could.
func Suffix(s string) string {
	n := urlLen(s)
	if n == 0 {
		return URLs(s)
	}
	return Mask + URLs(s[n:])
}

// passwords masks the password of every URL's user info in s.
func passwords(s string) string {
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
		b.WriteString(rest[:start])
		b.WriteString(userInfo(rest[start:end]))
		rest = rest[end:]
	}
	b.WriteString(rest)
	return b.String()
}

// userInfo masks the password in auth, a URL's authority.
func userInfo(auth string) string {
	at := strings.LastIndexByte(auth, '@')
	colon := strings.IndexByte(auth, ':')
	if at < 0 || colon < 0 || colon > at {
		return auth
	}
	return auth[:colon+1] + Mask + auth[at:]
}

// params masks the value of every NAME=VALUE whose name is a secret's,
// after each '?', '&', '#' or ';' of s. With whole, s is the rest of one URL
// and a value ends only at '&' or '#'; otherwise also where a URL ends in
// text.
func params(s string, whole bool) string {
	if !strings.ContainsAny(s, "?&#;") && !strings.Contains(s, jsonAmp) {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); i++ {
		name := i + 1
		switch {
		case strings.IndexByte("?&#;", s[i]) >= 0:
		case strings.HasPrefix(s[i:], jsonAmp):
			name = i + len(jsonAmp)
		default:
			continue
		}
		eq := name
		for eq < len(s) && s[eq] != '=' && !endsName(s[eq], whole) {
			eq++
		}
		if eq == len(s) || s[eq] != '=' || eq == name || !SecretName(s[name:eq]) {
			continue
		}
		val := eq + 1
		end := val + valueLen(s[val:], whole)
		if s[val:end] == Mask {
			i = end - 1
			continue
		}
		b.WriteString(s[done:val])
		b.WriteString(Mask)
		done = end
		i = end - 1
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// jsonAmp is '&' as encoding/json escapes it in a string.
const jsonAmp = `\u0026`

// endsName reports whether c cannot be part of a parameter's name.
func endsName(c byte, whole bool) bool {
	if strings.IndexByte("?&#;=", c) >= 0 {
		return true
	}
	return !whole && (c <= ' ' || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '`')
}

// valueLen is the length of the parameter value s starts with.
func valueLen(s string, whole bool) int {
	n := len(s)
	if !whole {
		n = urlLen(s)
	}
	if i := strings.IndexAny(s[:n], "&#"); i >= 0 {
		n = i
	}
	if i := strings.Index(s[:n], jsonAmp); i >= 0 {
		n = i
	}
	return n
}

// urlLen is the length of the part of a URL (or of a word) s starts with,
// up to the first character that ends a URL in text: white space, a
// control character, '<', '>', a backquote, or a double quote that is not
// escaped by a backslash (a URL quoted by %q or JSON may hold `\"`).
func urlLen(s string) int {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			continue // invalid bytes: part of whatever they are in
		case r < ' ' || r == 0x7f || unicode.IsSpace(r), r == '<', r == '>', r == '`':
			return i
		case r == '"' && (i == 0 || s[i-1] != '\\'):
			return i
		}
	}
	return len(s)
}

// schemeLen returns the length of s's scheme when s starts with SCHEME://
// (a letter, then letters, digits, '+', '-' or '.', as RFC 3986 has it),
// or -1.
func schemeLen(s string) int {
	i := strings.Index(s, "://")
	if i <= 0 {
		return -1
	}
	for j, c := range []byte(s[:i]) {
		alpha := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !alpha && (j == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return -1
		}
	}
	return i
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

// secretWords are matched anywhere in a parameter's name; secretEnds only
// at its end, being also the start or middle of ordinary words ("keyword",
// "signal", "inside"). The list is Datadog's default for obfuscating query
// strings and WAF keys (pass, pwd, secret, token, signature, api/private/
// public/access key, bearer, authorization, session ids, jwt), with key,
// sig and credential added for the signed URLs of the clouds: Google's
// ?key=, Azure SAS's sig=, S3's X-Amz-Signature and X-Amz-Credential.
var (
	secretWords = []string{"pass", "pwd", "secret", "token", "signature", "credential", "auth", "bearer", "session", "jwt"}
	secretEnds  = []string{"key", "sig", "sid"}
)

// SecretName reports whether a query or fragment parameter called name
// holds a secret: its name, percent-decoded, lower-cased and without '-',
// '_' and '.', contains one of pass, pwd, secret, token, signature,
// credential, auth, bearer, session, jwt, or ends with key, sig or sid.
// So token, access_token, password, passwd, client_secret, apiKey,
// api_key, X-API-Key, key, sig, X-Amz-Signature, X-Amz-Security-Token,
// X-Goog-Credential, jsessionid and PHPSESSID are secrets; keyword, signal,
// design and inside are not. Erring on the safe side, author and bypass
// are: a value masked for nothing costs a reader less than a leaked one.
func SecretName(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	name = strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.':
			return -1
		}
		return unicode.ToLower(r)
	}, name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	for _, w := range secretEnds {
		if strings.HasSuffix(name, w) {
			return true
		}
	}
	return false
}
