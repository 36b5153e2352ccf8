package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// pgMaxPayload is PostgreSQL's limit on a NOTIFY payload: in the default
// configuration it "must be shorter than 8000 bytes", and pg_notify
// refuses 8000 itself (checked against PostgreSQL 15).
const pgMaxPayload = 7999

// pgMaxChannel is the longest identifier PostgreSQL keeps (NAMEDATALEN-1);
// LISTEN would silently truncate a longer channel name.
const pgMaxChannel = 63

// postgres listens with LISTEN on one connection and publishes with
// pg_notify on the same one.
type postgres struct {
	cfg *pgx.ConnConfig
}

func newPostgres(name, url string) (*postgres, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.RuntimeParams["application_name"] == "" {
		// pg_stat_activity then says whose connection this is.
		cfg.RuntimeParams["application_name"] = clientName(name)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = dialTimeout
	}
	return &postgres{cfg: cfg}, nil
}

func (p *postgres) check(ch string, _ bool) error {
	switch {
	case ch == "":
		return errors.New("empty channel")
	case len(ch) > pgMaxChannel:
		return fmt.Errorf("a PostgreSQL channel has at most %d bytes, got %d", pgMaxChannel, len(ch))
	case strings.IndexByte(ch, 0) >= 0:
		return errors.New("a PostgreSQL channel may not contain NUL")
	}
	return nil
}

func (p *postgres) maxPayload() int      { return pgMaxPayload }
func (p *postgres) publishesAlone() bool { return false }
func (p *postgres) close()               {}

func (p *postgres) dial(ctx context.Context, deliver func(string, []byte), _ func(string)) (session, error) {
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &pgSession{conn: conn, deliver: deliver, ctx: sctx, cancel: cancel, doneCh: make(chan struct{})}
	go s.read()
	return s, nil
}

func (p *postgres) publish(ctx context.Context, sess session, ch string, payload []byte) error {
	s, ok := sess.(*pgSession)
	if !ok {
		return ErrUnavailable
	}
	return s.do(ctx, pgCmd{sql: "SELECT pg_notify($1, $2)", args: []any{ch, string(payload)}})
}

// pgSession is one LISTEN connection. A pgx connection is used by one
// goroutine at a time, so its reader runs every command: a command is
// queued and the reader's wait for notifications is interrupted (its
// context is cancelled, which pgx turns into a read deadline that leaves
// the connection usable).
type pgSession struct {
	conn    *pgx.Conn
	deliver func(string, []byte)
	ctx     context.Context // the session's life; cancel closes it
	cancel  context.CancelFunc

	mu         sync.Mutex
	queue      []pgCmd
	cancelWait context.CancelFunc

	doneCh  chan struct{}
	lostErr error // set before doneCh is closed
}

type pgCmd struct {
	sql  string
	args []any
	res  chan error
}

func (s *pgSession) listen(ctx context.Context, chs []string) error {
	return s.do(ctx, pgCmd{sql: statements("LISTEN", chs)})
}

func (s *pgSession) unlisten(ctx context.Context, chs []string) error {
	return s.do(ctx, pgCmd{sql: statements("UNLISTEN", chs)})
}

// statements is "LISTEN "a"; LISTEN "b"", channel names quoted: a
// channel is matched exactly as pg_notify names it.
func statements(verb string, chs []string) string {
	parts := make([]string, len(chs))
	for i, ch := range chs {
		parts[i] = verb + " " + pgx.Identifier{ch}.Sanitize()
	}
	return strings.Join(parts, "; ")
}

// do hands c to the reader and waits for its result.
func (s *pgSession) do(ctx context.Context, c pgCmd) error {
	c.res = make(chan error, 1)
	s.mu.Lock()
	s.queue = append(s.queue, c)
	if s.cancelWait != nil {
		s.cancelWait()
	}
	s.mu.Unlock()
	select {
	case err := <-c.res:
		return err
	case <-s.doneCh:
		return fmt.Errorf("connection lost: %w", s.lostErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *pgSession) read() {
	defer close(s.doneCh)
	defer func() {
		// The reader is the connection's only user, so it closes it.
		cctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		_ = s.conn.Close(cctx)
		cancel()
	}()
	for {
		s.mu.Lock()
		if err := s.ctx.Err(); err != nil {
			s.lostErr = err
			s.mu.Unlock()
			return
		}
		wctx, cancel := context.WithCancel(s.ctx)
		s.cancelWait = cancel
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		if len(q) > 0 {
			cancel()
			for _, c := range q {
				err := s.exec(c)
				c.res <- err
				if s.conn.IsClosed() {
					s.lostErr = err
					return
				}
			}
			continue
		}
		n, err := s.conn.WaitForNotification(wctx)
		cancel()
		if n != nil {
			s.deliver(n.Channel, []byte(n.Payload))
		}
		if err != nil {
			if wctx.Err() != nil && s.ctx.Err() == nil && !s.conn.IsClosed() {
				continue // interrupted for a command
			}
			s.lostErr = err
			return
		}
	}
}

// exec runs one command within commandTimeout of the session's life, not
// the caller's context: a cancelled query would break the connection.
func (s *pgSession) exec(c pgCmd) error {
	ctx, cancel := context.WithTimeout(s.ctx, commandTimeout)
	defer cancel()
	if c.args == nil {
		_, err := s.conn.PgConn().Exec(ctx, c.sql).ReadAll()
		return err
	}
	_, err := s.conn.Exec(ctx, c.sql, c.args...)
	return err
}

func (s *pgSession) done() <-chan struct{} { return s.doneCh }
func (s *pgSession) err() error            { <-s.doneCh; return s.lostErr }

func (s *pgSession) close() {
	s.cancel()
	<-s.doneCh
}
