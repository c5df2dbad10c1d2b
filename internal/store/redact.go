package store

import (
	"net/url"
	"strings"
)

// redacted replaces secret values in redacted URLs.
const redacted = "REDACTED"

// secretParamWords are substrings of query parameter names whose values are
// treated as secrets (case-insensitive): "secret_access_key", "sig",
// "X-Amz-Signature", "sas_token", "password", "client_secret"...
var secretParamWords = []string{
	"secret", "key", "token", "password", "passwd", "pwd", "signature", "sig",
	"credential", "auth", "session", "sas",
}

// Redact returns rawURL with secrets hidden: the userinfo password (and a
// userinfo without password, which is commonly a key) and the values of
// query parameters whose names look secret (secret, key, token, password,
// signature, credential, ...). Non-secret parameters such as endpoint and
// region are kept so error messages stay useful. A string that does not
// parse as a URL keeps only its part before any '?' or '@'.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		s := rawURL
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s = s[:i] + "?" + redacted
		}
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			scheme := ""
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				scheme = s[:j+3]
			}
			s = scheme + redacted + s[i:]
		}
		return s
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		} else {
			u.User = url.User(redacted)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			name, value, hasValue := strings.Cut(p, "=")
			if !hasValue {
				continue
			}
			if secretParam(name) {
				parts[i] = name + "=" + redacted
			} else if v, ok := redactNestedURL(value); ok {
				parts[i] = name + "=" + v // endpoint=http://user:pass@host
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" {
		u.Fragment = redacted
	}
	return u.String()
}

// redactNestedURL redacts a query value that is itself a URL carrying
// userinfo (an endpoint with credentials). It returns false for others.
func redactNestedURL(val string) (string, bool) {
	dec, err := url.QueryUnescape(val)
	if err != nil || !strings.Contains(dec, "@") {
		return "", false
	}
	if u, err := url.Parse(dec); err != nil || u.User == nil {
		return "", false
	}
	return url.QueryEscape(Redact(dec)), true
}

func secretParam(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	name = strings.ToLower(name)
	for _, w := range secretParamWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// secretsOf lists the secret values found in rawURL (password, secret query
// parameter values), so messages from underlying SDKs can be scrubbed.
func secretsOf(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		} else if n := u.User.Username(); n != "" {
			out = append(out, n)
		}
	}
	for name, vals := range u.Query() {
		if !secretParam(name) {
			for _, v := range vals { // a nested URL's userinfo
				if nu, err := url.Parse(v); err == nil && nu.User != nil && strings.Contains(v, "@") {
					out = append(out, secretsOf(v)...)
				}
			}
			continue
		}
		for _, v := range vals {
			if len(v) >= 4 { // short values would scrub unrelated text
				out = append(out, v, url.QueryEscape(v))
			}
		}
	}
	return out
}

// scrubError returns err unchanged when its message holds none of secrets,
// else an error with the same chain whose message has them replaced.
func scrubError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, redacted)
	}
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
