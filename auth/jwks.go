package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// maxJWKSBytes bounds a JWKS response body.
const maxJWKSBytes = 1 << 20

// minRetry is the first retry delay after a failed background fetch.
const minRetry = time.Second

// Sentinels used between the keyfunc and classify; never returned to callers.
var (
	errNoKeys      = errors.New("no keys loaded")
	errUnknownKey  = errors.New("unknown kid")
	errKeyMismatch = errors.New("key does not fit alg")
	errBadKID      = errors.New("kid is not a string")
)

// keySet holds the keys of one JWKS URL.
//
// Why not jwkset.NewStorageFromHTTP's own refresh: its refresh goroutine ends
// on context cancellation but cannot be waited for, and its unknown-kid
// refresh makes request goroutines wait on the rate limiter. Here the
// refresh goroutine is owned (close cancels and waits) and an unknown kid
// refetches at most once per interval without ever waiting for the limiter.
// jwkset parses and validates the keys; keyfunc maps kid and alg to a key.
type keySet struct {
	url     string
	client  *http.Client
	ownsCl  bool
	opts    options
	store   jwkset.Storage
	kf      keyfunc.Keyfunc
	limiter *rate.Limiter

	fetchMu sync.Mutex    // serialises fetches so concurrent unknown kids share one
	gen     atomic.Uint64 // successful fetches
	count   atomic.Int64  // usable keys after the last successful fetch

	cancel context.CancelFunc
	done   chan struct{}
}

func newKeySet(ctx context.Context, u string, o options) *keySet {
	if ctx == nil {
		ctx = context.Background()
	}
	k := &keySet{
		url:     u,
		client:  o.client,
		opts:    o,
		store:   jwkset.NewMemoryStorage(),
		limiter: rate.NewLimiter(rate.Every(o.unknownKID), 1),
		done:    make(chan struct{}),
	}
	if k.client == nil {
		k.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		k.ownsCl = true
	}
	// keyfunc.New only fails without a storage.
	k.kf, _ = keyfunc.New(keyfunc.Options{Storage: k.store})

	k.fetchMu.Lock()
	err := k.fetch(ctx)
	k.fetchMu.Unlock()
	if err != nil {
		k.report(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	go k.run(runCtx, err != nil)
	return k
}

// run refetches every refreshInterval; after a failure it retries sooner.
func (k *keySet) run(ctx context.Context, failed bool) {
	defer close(k.done)
	retry := time.Duration(0)
	next := k.opts.refreshInterval
	if failed {
		retry = minRetry
		next = retry
	}
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.fetchMu.Lock()
		err := k.fetch(ctx)
		k.fetchMu.Unlock()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			k.report(err)
			retry = min(max(2*retry, minRetry), k.opts.refreshInterval)
			next = retry
		default:
			retry = 0
			next = k.opts.refreshInterval
		}
		t.Reset(next)
	}
}

func (k *keySet) close() {
	k.cancel()
	<-k.done
	if k.ownsCl {
		k.client.CloseIdleConnections()
	}
}

func (k *keySet) report(err error) {
	if k.opts.onRefreshError != nil {
		k.opts.onRefreshError(err)
	}
}

// fetch loads the JWKS and replaces the stored keys; on error the old keys
// stay. The caller holds fetchMu.
func (k *keySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.opts.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrJWKSFetch, k.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrJWKSFetch, k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("%w: %s: body larger than %d bytes", ErrJWKSFetch, k.url, maxJWKSBytes)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("%w: %s: not a JWK Set: %w", ErrJWKSFetch, k.url, err)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		// Only public signature keys: a symmetric key in a published set
		// would let anyone who fetched it sign tokens.
		if m.USE == jwkset.UseEnc || m.KTY == jwkset.KtyOct {
			continue
		}
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue // unsupported or invalid key: skip it, keep the others
		}
		keys = append(keys, jwk)
	}
	if len(set.Keys) > 0 && len(keys) == 0 {
		return fmt.Errorf("%w: %s: no usable signature keys", ErrJWKSFetch, k.url)
	}
	if err := k.store.KeyReplaceAll(ctx, keys); err != nil {
		return fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	}
	k.count.Store(int64(len(keys)))
	k.gen.Add(1)
	return nil
}

// refreshUnknown refetches because a kid was not found, unless another
// fetch completed since gen was read (then its result is used) or the
// limiter says no. It never waits for the limiter.
func (k *keySet) refreshUnknown(ctx context.Context, gen uint64) bool {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if k.gen.Load() != gen {
		return true
	}
	if !k.limiter.Allow() {
		return false
	}
	if err := k.fetch(ctx); err != nil {
		if ctx.Err() == nil { // a client that went away is not a JWKS failure
			k.report(err)
		}
		return false
	}
	return true
}

// key returns the verification key(s) for token t, whose alg is already
// known to be an accepted asymmetric one.
func (k *keySet) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, hasKID := t.Header["kid"]
	if _, ok := kid.(string); hasKID && !ok {
		return nil, errBadKID
	}
	for attempt := 0; ; attempt++ {
		gen := k.gen.Load()
		if k.count.Load() > 0 {
			if !hasKID {
				set, err := k.kf.VerificationKeySet(ctx)
				if err != nil {
					return nil, errNoKeys
				}
				fit := set.Keys[:0:0]
				for _, key := range set.Keys {
					if keyFits(alg, key) {
						fit = append(fit, key)
					}
				}
				if len(fit) == 0 {
					return nil, errKeyMismatch
				}
				return jwt.VerificationKeySet{Keys: fit}, nil
			}
			key, err := k.kf.KeyfuncCtx(ctx)(t)
			switch {
			case err == nil:
				if !keyFits(alg, key) {
					return nil, errKeyMismatch
				}
				return key, nil
			case !errors.Is(err, jwkset.ErrKeyNotFound):
				return nil, errKeyMismatch // the JWK's own alg differs from the token's
			}
		}
		if attempt > 0 || !k.refreshUnknown(ctx, gen) {
			if k.count.Load() == 0 {
				return nil, errNoKeys
			}
			return nil, errUnknownKey
		}
	}
}

// keyFits reports whether key is of the type alg needs; jwt checks this too,
// but this check names the failure and pins ECDSA curves to their alg.
func keyFits(alg string, key any) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok := key.(*rsa.PublicKey)
		return ok
	case "ES256", "ES384", "ES512":
		pk, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return pk.Curve == want
	case "EdDSA":
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}
