package redact

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzURL: masking is stable (masking twice changes nothing) and complete
// for what url.Parse reads: a URL that parses shows, through URL, a
// password of Mask and Mask for every value of a parameter SecretName
// names; through URLs and Suffix, in a text cut anywhere before it, no
// password.
func FuzzURL(f *testing.F) {
	for _, s := range []string{
		"http://bob:S3cret@host/x", "https://a:b@c:1/p?q#f", "http://h/?token=abc&a=1", "http://h/?a=1&Password=p%20w#f",
		"https://b/o?X-Amz-Credential=A%2F1&X-Amz-Signature=f00d", "https://h/cb#access_token=ey.J&state=s",
		"http://u:p w@h/", "http://h/p q?token=a b&c=d", "http://h/?next=http://u:pw@i/?token=t", "http://u:pw@[::1]:80/?sig=1",
		"http://bob:p,w;(x)'y@host/", `{"url":"http://h/?a=1\u0026token=abc"}`, "exec:curl http://u:pw@h/?key=k", "",
	} {
		f.Add(s, 0)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		for name, mask := range map[string]func(string) string{"URLs": URLs, "URL": URL, "Suffix": Suffix} {
			once := mask(s)
			if twice := mask(once); twice != once {
				t.Fatalf("%s(%q) = %q, then %q", name, s, once, twice)
			}
		}
		u, err := url.Parse(s)
		if err != nil || schemeLen(s) < 0 {
			return
		}
		shown := URL(s)
		got, err := url.Parse(shown)
		if err != nil {
			t.Fatalf("%q parses, URL(%q) = %q does not: %v", s, s, shown, err)
		}
		if _, has := u.User.Password(); has {
			if p, _ := got.User.Password(); p != Mask || got.User.Username() != u.User.Username() {
				t.Fatalf("URL(%q) = %q: user info %v", s, shown, got.User)
			}
		}
		gotQuery := got.Query()
		for name := range u.Query() {
			if !SecretName(name) {
				continue
			}
			for _, v := range gotQuery[name] {
				if v != Mask && v != "" { // "?token" has no value to hide
					t.Fatalf("URL(%q) = %q: %s=%q", s, shown, name, v)
				}
			}
		}
		// In text, cut anywhere before the password: no password, as
		// long as it is one the text rule finds (no character that ends a
		// URL in text) and one no mask or other part can spell.
		p, has := u.User.Password()
		if !has || len(p) < 4 || strings.Contains(Mask+"@", p) || urlLen(s) != len(s) {
			return
		}
		text := "x " + s + " y"
		at := strings.Index(text, ":"+p+"@")
		if at < 0 || strings.Count(text, p) != 1 {
			return
		}
		if shown := URLs(text); strings.Contains(shown, p) {
			t.Fatalf("URLs(%q) = %q shows the password %q", text, shown, p)
		}
		if cut < 0 {
			cut = -cut
		}
		cut %= at + 1
		if shown := Suffix(text[cut:]); strings.Contains(shown, p) {
			t.Fatalf("Suffix(%q) = %q shows the password %q", text[cut:], shown, p)
		}
	})
}
