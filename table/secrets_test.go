package table_test

// Reliability suite, secrets: credentials in a table URL never appear in
// errors or log records of table operations. The table lives behind a
// minimal S3 server on 127.0.0.1 (reads served from a memory store, writes
// refused with 403 AccessDenied) so the real S3 driver, its errors and the
// commit retry logging all run.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// readOnlyS3 serves path-style S3 GET/HEAD/ListObjectsV2 for bucket from
// st, and refuses every write with 403 AccessDenied (as for a read-only
// credential; not retried by the SDK, so the test stays fast).
type readOnlyS3 struct {
	bucket string
	st     store.Store
	mu     sync.Mutex
	writes int
}

func (s *readOnlyS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key, inBucket := strings.CutPrefix(r.URL.Path, "/"+s.bucket)
	key = strings.TrimPrefix(key, "/")
	if !inBucket {
		s3Error(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	switch r.Method {
	case http.MethodPut, http.MethodPost, http.MethodDelete:
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
		s3Error(w, http.StatusForbidden, "AccessDenied")
		return
	case http.MethodGet, http.MethodHead:
	default:
		s3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	}
	if key == "" {
		s.list(ctx, w, r.URL.Query())
		return
	}
	data, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		s3Error(w, http.StatusNotFound, "NoSuchKey")
		return
	} else if err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError")
		return
	}
	h := w.Header()
	h.Set("Last-Modified", time.Unix(1700000000, 0).UTC().Format(http.TimeFormat))
	h.Set("ETag", `"`+strconv.Itoa(len(data))+`"`)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	start, end, status := 0, len(data)-1, http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		a, b, _ := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.Atoi(a)
		if b != "" {
			end, _ = strconv.Atoi(b)
		}
		end = min(end, len(data)-1)
		if start > end {
			s3Error(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
			return
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
	}
	if status == http.StatusOK {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(data))
		h.Set("x-amz-checksum-crc32", base64.StdEncoding.EncodeToString(sum[:]))
	}
	h.Set("Content-Length", strconv.Itoa(end-start+1))
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data[start : end+1])
	}
}

func (s *readOnlyS3) list(ctx context.Context, w http.ResponseWriter, q url.Values) {
	type content struct {
		Key          string
		LastModified string
		ETag         string
		Size         int64
		StorageClass string
	}
	type result struct {
		XMLName     xml.Name `xml:"ListBucketResult"`
		Name        string
		Prefix      string
		KeyCount    int
		MaxKeys     int
		IsTruncated bool
		Contents    []content
	}
	res := result{Name: s.bucket, Prefix: q.Get("prefix"), MaxKeys: 1000}
	after := max(q.Get("start-after"), q.Get("continuation-token"))
	for info, err := range s.st.List(ctx, q.Get("prefix"), after) {
		if err != nil {
			s3Error(w, http.StatusInternalServerError, "InternalError")
			return
		}
		res.Contents = append(res.Contents, content{
			Key: info.Key, LastModified: "2023-11-14T22:13:20.000Z",
			ETag: `"x"`, Size: info.Size, StorageClass: "STANDARD",
		})
	}
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(res)
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>1</RequestId></Error>`, code, code)
}

// lockedBuffer is a bytes.Buffer safe for a slog handler used by several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-from-env")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	ctx := context.Background()

	backing, err := store.Open(ctx, "mem://"+uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	defer backing.Close()
	src, err := table.CreateInStore(ctx, backing, relSchema(), table.WithoutAutoCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Append(ctx, []map[string]any{{"id": int64(1)}, {"id": int64(2)}}); err != nil {
		t.Fatal(err)
	}
	fake := &readOnlyS3{bucket: "kappa", st: backing}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	const secret = "Sup3rS3cretPassw0rdValue"
	const secret2 = "An0therEndpointSecretXyz"
	ep, _ := url.Parse(srv.URL)
	ep.User = url.UserPassword("epuser", secret2)
	urls := []string{
		// userinfo on the table URL
		"s3://AKIAUSERINFOKEY:" + secret + "@kappa?region=us-east-1&use_path_style=true&disable_https=true&endpoint=" + url.QueryEscape(srv.URL),
		// credentials inside the endpoint parameter
		"s3://kappa?region=us-east-1&use_path_style=true&disable_https=true&endpoint=" + url.QueryEscape(ep.String()),
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []error
	record := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	opened := 0
	for _, u := range urls {
		tbl, err := table.Open(ctx, u, table.WithLogger(logger), table.WithMaxCommitRetries(1), table.WithoutAutoCheckpoint())
		if err != nil {
			record(err)
			t.Logf("open failed (checked for secrets): %v", err)
			continue
		}
		opened++
		if strings.Contains(tbl.URL(), secret) || strings.Contains(tbl.URL(), secret2) {
			t.Errorf("Table.URL() %q holds a secret", tbl.URL())
		}
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			record(err)
		} else if snap.NumFiles() != 1 {
			t.Errorf("snapshot through the fake S3: %d files", snap.NumFiles())
		}
		tx, err := tbl.NewTransaction(ctx)
		if err == nil {
			tx.AddFiles(&txlog.Add{Path: "x.parquet", Size: 1, DataChange: true, PartitionValues: map[string]*string{}})
			_, err = tx.Commit(ctx)
			if err == nil {
				t.Error("commit succeeded through a server refusing writes")
			}
		}
		record(err)
		_, err = tbl.Append(ctx, []map[string]any{{"id": int64(3)}})
		record(err)
		_, err = tbl.Vacuum(ctx, table.VacuumOptions{DryRun: true})
		record(err)
		_, err = tbl.Snapshot(ctx, table.AtVersion(99))
		record(err)
		_ = tbl.Close()
	}
	// Failing opens and creates with credentials.
	_, err = table.Open(ctx, "s3://AKIA:"+secret+"@kappa/missing?region=us-east-1&use_path_style=true&disable_https=true&endpoint="+url.QueryEscape(srv.URL), table.WithLogger(logger))
	record(err)
	_, err = table.Create(ctx, "s3://AKIA:"+secret+"@kappa/new?region=us-east-1&use_path_style=true&disable_https=true&endpoint="+url.QueryEscape(srv.URL), relSchema(), table.WithLogger(logger))
	record(err)
	_, err = table.Open(ctx, "https://user:"+secret+"@example.com/t")
	record(err)
	_, err = table.Open(ctx, "s3://kappa?region=us-east-1&secret_access_key="+secret)
	record(err)

	if opened == 0 {
		t.Fatal("no table opened through the fake S3 server")
	}
	if !strings.Contains(logs.String(), "commit write failed") {
		t.Errorf("the commit retry was not logged, the log check proves nothing:\n%s", logs.String())
	}
	for _, s := range []string{secret, secret2} {
		for _, err := range errs {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error holds a secret: %v", err)
			}
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("log output holds a secret:\n%s", logs.String())
		}
	}
	t.Logf("%d errors and %d bytes of logs checked, %d writes refused by the server", len(errs), len(logs.String()), fake.writes)
}
