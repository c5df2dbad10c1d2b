package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
)

func TestConditionalConflictDetection(t *testing.T) {
	conflict := fmt.Errorf("upload: %w", &smithy.GenericAPIError{Code: "ConditionalRequestConflict", Message: "conflict"})
	if !isConditionalConflict(conflict) {
		t.Fatalf("ConditionalRequestConflict not recognised")
	}
	if isConditionalConflict(&smithy.GenericAPIError{Code: "PreconditionFailed"}) {
		t.Fatalf("PreconditionFailed taken for a conflict")
	}
	if isConditionalConflict(errors.New("409")) {
		t.Fatalf("plain error taken for a conflict")
	}
}

func TestClassifyScrubsSecrets(t *testing.T) {
	s := &BlobStore{url: "s3://b?secret=REDACTED", secrets: secretsOf("s3://b?secret=hunter2hunter2")}
	err := s.opErr(context.Background(), "get", "k", errors.New("request to s3://b?secret=hunter2hunter2 failed"))
	if got := err.Error(); got != `get s3://b?secret=REDACTED key "k": request to s3://b?secret=REDACTED failed` {
		t.Fatalf("error = %q", got)
	}
}
