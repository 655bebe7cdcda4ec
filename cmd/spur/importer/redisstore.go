package importer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisStore reads gearmand's redis queue. gearmand keeps one hash per job:
//
//	key:    PREFIX "-" FUNCTION "-" UNIQUE      (PREFIX is --redis-prefix, default "_gear_")
//	fields: "data" (the job's bytes), "priority" (decimal 0, 1 or 2)
//
// It stores no run-at time (gearmand refuses epoch jobs with this store) and no order: its
// replay walks KEYS in the server's hash order, so neither does the order survive here.
// gearmand's replay splits the rest of the key at the first '-', so a function name holding
// a '-' comes back with the wrong function and unique there; we split the same way, which is
// what restarting gearmand on this store would have done.
type redisStore struct {
	c      *redis.Client
	prefix string
	desc   string
}

type redisConfig struct{ server, port, password, prefix string }

func openRedis(ctx context.Context, c redisConfig) (*redisStore, error) {
	if c.server == "" {
		c.server = "127.0.0.1"
	}
	if c.port == "" {
		c.port = "6379"
	}
	if c.prefix == "" {
		c.prefix = "_gear_"
	}
	addr := net.JoinHostPort(c.server, c.port)
	cl := redis.NewClient(&redis.Options{Addr: addr, Password: c.password, Protocol: 2, DisableIdentity: true})
	s := &redisStore{c: cl, prefix: c.prefix, desc: fmt.Sprintf("redis %s (prefix %s)", addr, c.prefix)}
	if err := cl.Ping(ctx).Err(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("%s: %w", s.desc, err)
	}
	return s, nil
}

func (s *redisStore) Describe() string { return s.desc }

// globEscape makes a literal of s in a redis MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (s *redisStore) Rows(ctx context.Context) ([]Row, error) {
	// SCAN may return a key twice while the keyspace changes; gearmand is stopped, but be
	// safe: keep each key once.
	seen := map[string]bool{}
	var keys []string
	it := s.c.Scan(ctx, 0, globEscape(s.prefix+"-")+"*", 1000).Iterator()
	for it.Next(ctx) {
		if k := it.Val(); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("%s: SCAN: %w", s.desc, err)
	}
	var out []Row
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		batch := keys[:n]
		keys = keys[n:]
		pipe := s.c.Pipeline()
		cmds := make([]*redis.SliceCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.HMGet(ctx, k, "data", "priority")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("%s: HMGET: %w", s.desc, err)
		}
		for i, k := range batch {
			v, err := cmds[i].Result()
			if err != nil {
				return nil, fmt.Errorf("%s: HMGET %q: %w", s.desc, k, err)
			}
			r, err := s.row(k, v)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// row decodes one job hash. A key that is not a job of gearmand's (no hash, no data or no
// priority) is an error: something else shares the prefix, and the operator must say what.
func (s *redisStore) row(key string, v []any) (Row, error) {
	rest := key[len(s.prefix)+1:]
	fn, unique, ok := strings.Cut(rest, "-")
	if !ok {
		return Row{}, fmt.Errorf("%s: key %q is not PREFIX-FUNCTION-UNIQUE, as gearmand writes its jobs", s.desc, key)
	}
	data, okD := v[0].(string)
	prio, okP := v[1].(string)
	if !okD || !okP {
		return Row{}, fmt.Errorf("%s: key %q has no data or priority field: not a gearmand job", s.desc, key)
	}
	p, err := strconv.ParseInt(prio, 10, 64)
	if err != nil {
		p = -1 // refused by Row.check as a bad priority, and left in place
	}
	return Row{Unique: unique, Function: fn, Priority: p, Data: []byte(data), id: key}, nil
}

func (s *redisStore) Delete(ctx context.Context, rows []Row) error {
	for len(rows) > 0 {
		n := min(len(rows), 1000)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = rows[i].id.(string)
		}
		if err := s.c.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("%s: deleting imported jobs: %w", s.desc, err)
		}
		rows = rows[n:]
	}
	return nil
}

func (s *redisStore) Close() error { return s.c.Close() }
