package store_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
)

// secretURLForms place a secret where users put credentials in store URLs.
var secretURLForms = []func(secret string) string{
	func(s string) string {
		return "s3://bucket/t?region=us-east-1&secret_access_key=" + url.QueryEscape(s)
	},
	func(s string) string {
		return "s3://bucket/t?aws_session_token=" + url.QueryEscape(s) + "&region=eu-west-1"
	},
	func(s string) string {
		return (&url.URL{Scheme: "https", User: url.UserPassword("user", s), Host: "example.com", Path: "/t"}).String()
	},
	func(s string) string {
		return (&url.URL{Scheme: "s3", User: url.User(s), Host: "bucket", Path: "/t"}).String()
	},
	func(s string) string { return "azblob://container/t?sas_token=" + url.QueryEscape(s) },
	func(s string) string { return "gs://bucket/t?access_token=" + url.QueryEscape(s) + "&x=1" },
	func(s string) string { return "azblob://c?sig=" + url.QueryEscape(s) + "&sv=2020-01-01" },
	func(s string) string { return "s3://bucket?X-Amz-Signature=" + url.QueryEscape(s) },
	func(s string) string { return "s3://bucket?Password=" + url.QueryEscape(s) },
	func(s string) string {
		ep := (&url.URL{Scheme: "http", User: url.UserPassword("u", s), Host: "127.0.0.1:9000"}).String()
		return "s3://bucket/t?endpoint=" + url.QueryEscape(ep) + "&region=r"
	},
}

func leaks(out, secret string) bool {
	return strings.Contains(out, secret) || strings.Contains(out, url.QueryEscape(secret)) ||
		strings.Contains(out, url.PathEscape(secret))
}

// FuzzRedact: Redact never panics, and a secret placed in any of the usual
// credential positions of a store URL never survives it.
func FuzzRedact(f *testing.F) {
	for i := range secretURLForms {
		f.Add(uint8(i), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
		f.Add(uint8(i), "p@ss:w/rd?#&=%")
	}
	f.Fuzz(func(t *testing.T, form uint8, secret string) {
		_ = store.Redact(secret) // arbitrary input: no panic
		mk := secretURLForms[int(form)%len(secretURLForms)]
		if len(secret) < 8 || !strings.ContainsFunc(secret, func(r rune) bool { return r >= '0' && r <= 'z' }) {
			return
		}
		// A secret that is part of the URL's fixed text cannot be hidden.
		if leaks(store.Redact(mk("QQQQQQQQ")), secret) || leaks(mk(""), secret) {
			return
		}
		raw := mk(secret)
		if out := store.Redact(raw); leaks(out, secret) {
			t.Fatalf("Redact(%q) = %q still holds the secret", raw, out)
		}
	})
}

// TestOpenErrorsHideSecrets: store.Open failures never quote credentials
// from the URL, whichever layer (our parser, gocloud's URL opener, the
// SDK) produced the message.
func TestOpenErrorsHideSecrets(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	const secret = "S3cr3tValueThatMustNotLeak"
	urls := []string{
		"s3://bucket/t?region=us-east-1&secret_access_key=" + secret,
		"s3://bucket/t?region=us-east-1&unknown_param=1&token=" + secret,
		"https://user:" + secret + "@example.com/t",
		"ftp://user:" + secret + "@example.com/t",
		"mem://name?token=" + secret,
		"file://user:" + secret + "@somehost/tmp/x",
		"file:///tmp/x?password=" + secret,
		"s3://us er:" + secret + "@bucket/t",
		"s3://bucket/t?secret=" + secret + "&%zz",
		"azblob://container/t?sas_token=" + secret + "&unknown=1",
		"gs://bucket/t?access_token=" + secret + "&unknown=1",
		"s3://bucket/t?region=us-east-1&endpoint=http%3A%2F%2Fuser%3A" + secret + "%40127.0.0.1%3A1&bogus=1",
		"s3://bucket/../t?secret=" + secret,
		"s3://bucket/t?region=us-east-1&endpoint=http://user:" + secret + "@127.0.0.1:1&bogus=1",
	}
	for _, u := range urls {
		st, err := store.Open(context.Background(), u)
		if err == nil {
			if leaks(st.URL(), secret) {
				t.Errorf("Open(%q).URL() = %q leaks the secret", u, st.URL())
			}
			_ = st.Close()
			continue
		}
		if leaks(err.Error(), secret) {
			t.Errorf("Open(%q) error leaks the secret: %v", u, err)
		}
	}
}
