package stripe

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// IdempotencyKey derives a deterministic key from an object's UID, the operation, and the generation it acts for,
// plus any further parts that distinguish one intent from another (for an update: the values it changes from and
// to, so that repairing drift after an out-of-band edit is not mistaken for a replay of an earlier update).
// The same intent always gets the same key, so a retry after a timeout or a crash replays Stripe's stored result
// instead of acting twice. Keys stay well under Stripe's 255-character limit.
func IdempotencyKey(uid, operation string, generation int64, parts ...string) string {
	key := fmt.Sprintf("k8s-%s-%s-g%d", uid, operation, generation)
	if len(parts) > 0 {
		sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		key += "-" + hex.EncodeToString(sum[:8])
	}
	return key
}

// FormFingerprint renders a set of changed parameters deterministically, for IdempotencyKey.
func FormFingerprint(fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(fields[k])
		b.WriteByte('&')
	}
	return b.String()
}
