package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

// Transaction collects the actions of one commit. It is built on the
// snapshot current when it was created (its read version) and commits at
// the next free version, checking the commits that won in between against
// what it read (see Commit). A Transaction is not safe for concurrent use.
type Transaction struct {
	t           *Table
	readVersion int64
	protocol    *txlog.Protocol
	metadata    *txlog.Metadata
	config      Config
	txns        map[string]int64
	lastCommit  int64 // commit time (ms) of the read version, for ICT

	adds     []*txlog.Add
	removes  []*txlog.Remove
	setTxns  []*txlog.Txn
	domains  []*txlog.DomainMetadata
	newMeta  *txlog.Metadata
	newProto *txlog.Protocol // protocol upgrade the new metadata needs
	op       string
	params   map[string]any
	readTxns map[string]bool
	readKeys map[fileKey]bool
	readAll  bool
	done     bool
	// txnID identifies this transaction's commit (commitInfo.txnId). It is
	// drawn once, so a Commit repeated after ErrCommitUnknown recognises its
	// own earlier commit instead of writing the transaction twice.
	txnID string
}

// NewTransaction starts a transaction on the latest version of the table.
// It fails when the table's protocol has writer features this package does
// not implement (txlog.ErrUnsupportedFeature).
func (t *Table) NewTransaction(ctx context.Context) (*Transaction, error) {
	t.mu.Lock()
	snap, err := t.cachedLatestLocked(ctx)
	if err != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("new transaction: %w", err)
	}
	tx := newTransaction(t, snap)
	t.mu.Unlock()
	if err := tx.checkWritable(tx.protocol, tx.metadata); err != nil {
		return nil, fmt.Errorf("new transaction on version %d: %w", tx.readVersion, err)
	}
	return tx, nil
}

// NewTransaction starts a transaction reading this snapshot's version.
func (s *Snapshot) NewTransaction() (*Transaction, error) {
	tx := newTransaction(s.table, s)
	if err := tx.checkWritable(tx.protocol, tx.metadata); err != nil {
		return nil, fmt.Errorf("new transaction on version %d: %w", tx.readVersion, err)
	}
	return tx, nil
}

func newTransaction(t *Table, s *Snapshot) *Transaction {
	return &Transaction{
		t:           t,
		readVersion: s.version,
		protocol:    s.protocol,
		metadata:    s.metadata,
		config:      s.config,
		txns:        s.Txns(),
		lastCommit:  s.timestamp.UnixMilli(),
		readTxns:    map[string]bool{},
		readKeys:    map[fileKey]bool{},
	}
}

// ReadVersion is the version the transaction was built on.
func (tx *Transaction) ReadVersion() int64 { return tx.readVersion }

// Metadata is the table metadata the transaction sees (a copy).
func (tx *Transaction) Metadata() txlog.Metadata {
	if tx.newMeta != nil {
		return cloneMetadata(tx.newMeta)
	}
	return cloneMetadata(tx.metadata)
}

// AddFiles adds data files (paths relative to the table root, as written).
func (tx *Transaction) AddFiles(adds ...*txlog.Add) { tx.adds = append(tx.adds, adds...) }

// RemoveFiles removes data files; a file that a concurrent commit removed
// too makes Commit fail with a ConflictDeleteDelete conflict.
func (tx *Transaction) RemoveFiles(removes ...*txlog.Remove) {
	tx.removes = append(tx.removes, removes...)
}

// ReadFiles records that the transaction's result depends on these files:
// a concurrent commit removing one of them is a conflict.
func (tx *Transaction) ReadFiles(files ...*txlog.Add) {
	for _, f := range files {
		tx.readKeys[addKey(f)] = true
	}
}

// ReadWholeTable records that the transaction depends on the whole table:
// any concurrent data change except a blind append is a conflict.
func (tx *Transaction) ReadWholeTable() { tx.readAll = true }

// SetTxn records an application transaction version (exactly-once
// bookkeeping). A concurrent commit writing a txn for the same appId is a
// conflict.
func (tx *Transaction) SetTxn(appID string, version int64) {
	tx.readTxns[appID] = true
	for _, t := range tx.setTxns {
		if t.AppID == appID {
			t.Version = version
			return
		}
	}
	tx.setTxns = append(tx.setTxns, &txlog.Txn{AppID: appID, Version: version})
}

// ReadTxn returns the txn version of appID at the read version and records
// the read: a concurrent commit writing a txn for appID makes Commit fail
// with a ConflictTransaction conflict.
func (tx *Transaction) ReadTxn(appID string) (int64, bool) {
	tx.readTxns[appID] = true
	v, ok := tx.txns[appID]
	return v, ok
}

// SetDomainMetadata sets (or, with removed, removes) a metadata domain.
func (tx *Transaction) SetDomainMetadata(domain, configuration string, removed bool) {
	tx.domains = append(tx.domains, &txlog.DomainMetadata{Domain: domain, Configuration: configuration, Removed: removed})
}

// SetMetadata replaces the table metadata (schema, properties, ...). A
// concurrent commit is then always a conflict. When the new metadata uses
// a table feature the protocol lacks (NOT NULL columns are invariants;
// timestamp_ntz columns; appendOnly, changeDataFeed), Commit also writes
// the lowest protocol that adds it (never lowering a version).
func (tx *Transaction) SetMetadata(m txlog.Metadata) {
	c := cloneMetadata(&m)
	tx.newMeta = &c
}

// SetOperation sets commitInfo.operation and operationParameters (values
// are written as JSON). Default: "WRITE" with {"mode": "Append"} for a
// transaction that only adds files, "WRITE" otherwise.
func (tx *Transaction) SetOperation(op string, params map[string]any) {
	tx.op = op
	tx.params = maps.Clone(params)
}

// isBlindAppend: only adds, nothing read, no metadata change.
func (tx *Transaction) isBlindAppend() bool {
	return len(tx.removes) == 0 && tx.newMeta == nil && !tx.readAll && len(tx.readKeys) == 0
}

func (tx *Transaction) checkWritable(p *txlog.Protocol, m *txlog.Metadata) error {
	if err := txlog.CheckWritable(*p); err != nil {
		return err
	}
	for k := range m.Configuration {
		if strings.HasPrefix(k, PropConstraintPrefix) {
			return fmt.Errorf("%w: the table has CHECK constraint %s, which this writer does not enforce", txlog.ErrUnsupportedFeature, k)
		}
	}
	schema, err := txlog.ParseSchema(m.SchemaString)
	if err != nil {
		return fmt.Errorf("table schema: %w", err)
	}
	return checkSchemaWritable(schema)
}

// validate checks the transaction's own actions.
func (tx *Transaction) validate() error {
	meta := tx.metadata
	if tx.newMeta != nil {
		meta = tx.newMeta
		schema, err := txlog.ParseSchema(meta.SchemaString)
		if err != nil {
			return fmt.Errorf("%w: new metadata: %w", ErrInvalidArgument, err)
		}
		for _, pc := range meta.PartitionColumns {
			if schema.Field(pc) == nil {
				return fmt.Errorf("%w: new metadata: partition column %q is not in the schema", ErrInvalidArgument, pc)
			}
		}
		newCfg, err := ParseConfig(meta.Configuration)
		if err != nil {
			return err
		}
		if newCfg.InCommitTimestamps != tx.config.InCommitTimestamps {
			return fmt.Errorf("%w: changing %s on an existing table is not supported", ErrInvalidArgument, PropEnableInCommitTimestamps)
		}
		if meta.ID == "" {
			meta.ID = tx.metadata.ID
		}
	}
	cfg, _ := ParseConfig(meta.Configuration)
	if cfg.AppendOnly {
		for _, r := range tx.removes {
			if r.DataChange {
				return fmt.Errorf("remove %s: %w (delta.appendOnly=true)", r.Path, ErrAppendOnly)
			}
		}
	}
	if len(tx.domains) > 0 && !tx.protocol.SupportsWriterFeature("domainMetadata") {
		return fmt.Errorf("%w: domain metadata needs the domainMetadata writer feature, which the table's protocol lacks", ErrInvalidArgument)
	}
	parts := meta.PartitionColumns
	seen := make(map[fileKey]bool, len(tx.adds))
	for _, a := range tx.adds {
		if a == nil || a.Path == "" {
			return fmt.Errorf("%w: add with an empty path", ErrInvalidArgument)
		}
		k := addKey(a)
		if seen[k] {
			return fmt.Errorf("%w: file %s added twice", ErrInvalidArgument, a.Path)
		}
		seen[k] = true
		if len(a.PartitionValues) != len(parts) {
			return fmt.Errorf("%w: add %s: partition values for %d columns, the table has %d (%s)", ErrInvalidArgument, a.Path, len(a.PartitionValues), len(parts), strings.Join(parts, ", "))
		}
		for _, pc := range parts {
			if _, ok := a.PartitionValues[pc]; !ok {
				return fmt.Errorf("%w: add %s: no value for partition column %q", ErrInvalidArgument, a.Path, pc)
			}
		}
	}
	for _, r := range tx.removes {
		if r == nil || r.Path == "" {
			return fmt.Errorf("%w: remove with an empty path", ErrInvalidArgument)
		}
	}
	return nil
}

// Commit writes the transaction at the next version with put-if-absent and
// returns that version.
//
// When another writer took the version first, Commit reads the winning
// commits and applies Delta's conflict rules: a winner that changed the
// protocol or metadata, wrote a txn for an appId this transaction read or
// sets, removed a file it read or removes, or (when it read the whole table)
// changed data without a blind append, makes Commit fail with a
// *ConflictError (errors.Is ErrConflict). Otherwise the transaction retries
// at the next version, with jittered backoff honouring ctx, up to
// WithMaxCommitRetries times (then ErrTooManyRetries).
//
// A store error on the write is followed by a read of the version: if it
// holds this transaction's commit (its commitInfo.txnId) the commit landed
// and Commit succeeds; it never writes the same transaction twice. When
// that read fails too, Commit returns ErrCommitUnknown; calling Commit
// again on the same Transaction is then safe: it finds its own commit if
// it landed (at any later version) and returns that version.
//
// After a commit whose version is a multiple of delta.checkpointInterval, a
// checkpoint is written; its failure is logged, not returned.
func (tx *Transaction) Commit(ctx context.Context) (int64, error) {
	if tx.done {
		return 0, ErrTransactionDone
	}
	meta := tx.metadata
	if tx.newMeta != nil {
		meta = tx.newMeta
	}
	if err := tx.validate(); err != nil {
		return 0, fmt.Errorf("commit on version %d: %w", tx.readVersion, err)
	}
	proto := tx.protocol
	if tx.newMeta != nil {
		// New metadata may use features the protocol lacks (a NOT NULL
		// column is an invariant, a timestamp_ntz column, appendOnly, ...):
		// the commit then upgrades the protocol too, as Spark does.
		schema, _ := parseSchema(meta.SchemaString)
		cfg, _ := ParseConfig(meta.Configuration)
		if up := upgradeProtocol(tx.protocol, requiredFeatures(schema, meta.Configuration, cfg)); up != nil {
			proto, tx.newProto = up, up
		}
	}
	if err := tx.checkWritable(proto, meta); err != nil {
		return 0, fmt.Errorf("commit on version %d: %w", tx.readVersion, err)
	}
	if tx.txnID == "" {
		tx.txnID = uuid.NewString()
	}
	txnID := tx.txnID
	blind := tx.isBlindAppend()
	now := tx.t.cfg.now
	for _, t := range tx.setTxns {
		t.LastUpdated = ptr(now().UnixMilli())
	}
	actions := tx.buildActions(meta)
	version := tx.readVersion + 1
	prevTime := tx.lastCommit
	losses := 0
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("commit version %d: %w", version, err)
		}
		data, err := tx.encode(actions, meta, txnID, blind, version, prevTime)
		if err != nil {
			return 0, fmt.Errorf("commit version %d: %w", version, err)
		}
		err = tx.t.st.PutIfAbsent(ctx, txlog.CommitKey(version), data)
		if err == nil {
			tx.done = true
			tx.afterCommit(ctx, version)
			return version, nil
		}
		lost := errors.Is(err, store.ErrPreconditionFailed)
		if !lost {
			// Did the write land although it reported an error?
			got, gerr := tx.t.st.Get(ctx, txlog.CommitKey(version))
			switch {
			case gerr == nil:
				ci, _ := parseCommitInfo(version, got)
				if ci != nil && ci.TxnID == txnID {
					tx.done = true
					tx.afterCommit(ctx, version)
					return version, nil
				}
				lost = true // someone else's commit
			case errors.Is(gerr, store.ErrNotExist):
				// Not written: retry the same version.
			default:
				return 0, fmt.Errorf("commit version %d: %w: write failed (%w) and read-back failed (%w)", version, ErrCommitUnknown, err, gerr)
			}
		}
		if lost {
			next, ictBase, mine, err := tx.checkWinners(ctx, version, txnID)
			if err != nil {
				return 0, err
			}
			if mine >= 0 {
				tx.done = true
				tx.afterCommit(ctx, mine)
				return mine, nil
			}
			if ictBase > 0 {
				prevTime = ictBase
			}
			tx.t.cfg.logger.Debug("commit lost a race; retrying", "table", tx.t.URL(), "version", version, "next", next, "attempt", attempt+1)
			version = next
			losses++
		} else {
			tx.t.cfg.logger.Warn("commit write failed; retrying", "table", tx.t.URL(), "version", version, "err", err)
		}
		if attempt >= tx.t.cfg.maxRetries {
			if lost {
				return 0, fmt.Errorf("commit on version %d: %w after %d attempts", tx.readVersion, ErrTooManyRetries, attempt+1)
			}
			return 0, fmt.Errorf("commit version %d: %w", version, err)
		}
		if err := backoff(ctx, losses, !lost); err != nil {
			return 0, fmt.Errorf("commit version %d: %w", version, err)
		}
	}
}

// backoff sleeps before a retry: nothing after the first lost race,
// then jittered exponential delays (longer after store errors).
func backoff(ctx context.Context, losses int, storeErr bool) error {
	var d time.Duration
	switch {
	case storeErr:
		d = 50 * time.Millisecond << min(losses, 5)
	case losses <= 1:
		return nil
	default:
		d = time.Millisecond << min(losses-2, 8)
	}
	d = min(d, 2*time.Second)
	d = d/2 + rand.N(d/2+1)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// checkWinners reads the commits from version on (at least version exists)
// and checks them against the transaction. It returns the next version to
// try, the newest winner's commit time (for in-commit timestamps), and the
// version of a winner that is this transaction's own commit (-1 if none).
func (tx *Transaction) checkWinners(ctx context.Context, version int64, txnID string) (int64, int64, int64, error) {
	var ictBase int64
	v := version
	for {
		data, err := tx.t.st.Get(ctx, txlog.CommitKey(v))
		if errors.Is(err, store.ErrNotExist) {
			// The first free version (or, when v == version, a commit not
			// readable yet: the next attempt finds out).
			return v, ictBase, -1, nil
		}
		if err != nil {
			return 0, 0, -1, fmt.Errorf("commit: read winning commit %d: %w", v, err)
		}
		actions, err := txlog.ParseCommit(data)
		if err != nil {
			return 0, 0, -1, fmt.Errorf("commit: parse winning commit %d: %w", v, err)
		}
		for i := range actions {
			if ci := actions[i].CommitInfo; ci != nil {
				if ci.TxnID == txnID {
					return 0, 0, v, nil
				}
				if ci.InCommitTimestamp != nil {
					ictBase = *ci.InCommitTimestamp
				} else if ci.Timestamp != nil {
					ictBase = *ci.Timestamp
				}
			}
		}
		if cerr := tx.conflict(actions, v); cerr != nil {
			return 0, 0, -1, cerr
		}
		v++
	}
}

// conflict applies the conflict rules to one winning commit.
func (tx *Transaction) conflict(actions []txlog.Action, v int64) error {
	mk := func(kind ConflictKind, detail string) error {
		return &ConflictError{Kind: kind, ReadVersion: tx.readVersion, WinningVersion: v, Detail: detail}
	}
	winnerBlind := false
	for i := range actions {
		if ci := actions[i].CommitInfo; ci != nil && ci.IsBlindAppend != nil && *ci.IsBlindAppend {
			winnerBlind = true
		}
	}
	var removing map[fileKey]bool
	if len(tx.removes) > 0 {
		removing = make(map[fileKey]bool, len(tx.removes))
		for _, r := range tx.removes {
			removing[removeKey(r)] = true
		}
	}
	for i := range actions {
		a := &actions[i]
		switch {
		case a.Protocol != nil:
			return mk(ConflictProtocolChanged, "the protocol changed")
		case a.MetaData != nil:
			return mk(ConflictMetadataChanged, "the table metadata changed")
		case a.Txn != nil:
			if tx.readTxns[a.Txn.AppID] {
				return mk(ConflictTransaction, fmt.Sprintf("txn appId %q set to version %d", a.Txn.AppID, a.Txn.Version))
			}
		case a.Remove != nil:
			k := removeKey(a.Remove)
			if removing[k] {
				return mk(ConflictDeleteDelete, "both removed "+a.Remove.Path)
			}
			if tx.readKeys[k] || (tx.readAll && a.Remove.DataChange) {
				return mk(ConflictDeleteRead, "removed "+a.Remove.Path+" which this transaction read")
			}
		case a.Add != nil:
			if tx.readAll && a.Add.DataChange && !winnerBlind {
				return mk(ConflictAppend, "added "+a.Add.Path)
			}
		case a.DomainMetadata != nil:
			for _, d := range tx.domains {
				if d.Domain == a.DomainMetadata.Domain {
					return mk(ConflictTransaction, fmt.Sprintf("domain %q changed", d.Domain))
				}
			}
		}
	}
	return nil
}

func (tx *Transaction) buildActions(meta *txlog.Metadata) []txlog.Action {
	n := 3 + len(tx.setTxns) + len(tx.domains) + len(tx.removes) + len(tx.adds)
	actions := make([]txlog.Action, 0, n)
	actions = append(actions, txlog.Action{}) // commitInfo, filled per attempt
	if tx.newProto != nil {
		actions = append(actions, txlog.Action{Protocol: tx.newProto})
	}
	if tx.newMeta != nil {
		actions = append(actions, txlog.Action{MetaData: meta})
	}
	for _, t := range tx.setTxns {
		actions = append(actions, txlog.Action{Txn: t})
	}
	for _, d := range tx.domains {
		actions = append(actions, txlog.Action{DomainMetadata: d})
	}
	for _, r := range tx.removes {
		actions = append(actions, txlog.Action{Remove: r})
	}
	for _, a := range tx.adds {
		actions = append(actions, txlog.Action{Add: a})
	}
	return actions
}

// encode renders the commit for one attempt at version v.
func (tx *Transaction) encode(actions []txlog.Action, meta *txlog.Metadata, txnID string, blind bool, v, prevTime int64) ([]byte, error) {
	nowMs := tx.t.cfg.now().UnixMilli()
	ci := &txlog.CommitInfo{
		Timestamp:      &nowMs,
		Operation:      tx.op,
		ReadVersion:    ptr(tx.readVersion),
		IsolationLevel: "WriteSerializable",
		IsBlindAppend:  &blind,
		EngineInfo:     EngineInfo,
		TxnID:          txnID,
	}
	params := tx.params
	if ci.Operation == "" {
		ci.Operation = "WRITE"
		if params == nil && blind {
			params = map[string]any{"mode": "Append"}
		}
	}
	ci.OperationParameters = encodeParams(params)
	var bytesAdded int64
	for _, a := range tx.adds {
		bytesAdded += a.Size
	}
	ci.OperationMetrics = encodeParams(map[string]any{
		"numFiles":        strconv.Itoa(len(tx.adds)),
		"numOutputBytes":  strconv.FormatInt(bytesAdded, 10),
		"numRemovedFiles": strconv.Itoa(len(tx.removes)),
	})
	if tx.config.ictAt(v) {
		ict := max(nowMs, prevTime+1)
		ci.InCommitTimestamp = &ict
	}
	actions[0] = txlog.Action{CommitInfo: ci}
	return txlog.EncodeCommit(actions)
}

// afterCommit runs the post-commit hooks: the automatic checkpoint.
func (tx *Transaction) afterCommit(ctx context.Context, v int64) {
	meta := tx.metadata
	if tx.newMeta != nil {
		meta = tx.newMeta
	}
	cfg, _ := ParseConfig(meta.Configuration)
	if tx.t.cfg.noAutoCkpt || v == 0 || v%int64(cfg.CheckpointInterval) != 0 {
		return
	}
	if _, err := tx.t.Checkpoint(ctx, v); err != nil {
		tx.t.cfg.logger.Warn("automatic checkpoint failed", "table", tx.t.URL(), "version", v, "err", err)
	}
}
