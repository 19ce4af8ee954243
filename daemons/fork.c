/* Forks: secrets, fork genesis links, the 65-byte fork record, lineage. */
#include "daemons/daemon_internal.h"

#include <errno.h>
#include <sys/random.h>
#include <xxhash.h>

int mrt_fork_secret_new(uint8_t secret[MRT_FORK_SECRET_SIZE])
{
    if (secret == NULL)
        return MRT_EINVAL;
    size_t got = 0;
    while (got < MRT_FORK_SECRET_SIZE) {
        ssize_t n = getrandom(secret + got, MRT_FORK_SECRET_SIZE - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return MRT_ENOSYS; /* no kernel entropy: refuse rather than a guessable identity */
        got += (size_t)n;
    }
    return MRT_OK;
}

uint64_t mrt_fork_origin(const uint8_t secret[MRT_FORK_SECRET_SIZE])
{
    return mrt_host_origin_from_key(secret);
}

uint64_t mrt_fork_sentinel(uint64_t parent_origin, uint64_t fork_seq)
{
    uint8_t in[8 + 8 + 4];
    mrt_dm_store_le64(in, parent_origin);
    mrt_dm_store_le64(in + 8, fork_seq);
    memcpy(in + 16, "fork", 4);
    return XXH3_64bits(in, sizeof in);
}

int mrt_fork_record_make(const uint8_t secret[MRT_FORK_SECRET_SIZE], uint64_t parent_origin,
                         uint64_t fork_seq, const uint64_t *snapshot_seq, mrt_fork_record *out)
{
    if (secret == NULL || out == NULL)
        return MRT_EINVAL;
    uint64_t forked = mrt_fork_origin(secret);
    if (forked == parent_origin)
        return MRT_DAEMON_ELINEAGE;
    mrt_fork_record r;
    memset(&r, 0, sizeof r);
    r.original_origin = parent_origin;
    r.forked_origin = forked;
    r.fork_seq = fork_seq;
    r.genesis.origin_hash = forked;
    r.genesis.horizon_encoded = 0;
    r.genesis.sequence = 0;
    r.genesis.parent_hash = mrt_fork_sentinel(parent_origin, fork_seq);
    if (snapshot_seq != NULL) {
        r.has_snapshot = true;
        r.snapshot_seq = *snapshot_seq;
    }
    *out = r;
    return MRT_OK;
}

int mrt_fork_record_verify(const mrt_fork_record *r)
{
    if (r == NULL)
        return MRT_EINVAL;
    bool ok = r->genesis.parent_hash == mrt_fork_sentinel(r->original_origin, r->fork_seq) &&
              r->genesis.origin_hash == r->forked_origin && r->genesis.sequence == 0 &&
              r->genesis.horizon_encoded == 0 && r->original_origin != r->forked_origin &&
              (r->has_snapshot || r->snapshot_seq == 0);
    return ok ? MRT_OK : MRT_DAEMON_ELINEAGE;
}

void mrt_fork_record_encode(const mrt_fork_record *r, uint8_t out[MRT_FORK_RECORD_SIZE])
{
    mrt_dm_store_le64(out, r->original_origin);
    mrt_dm_store_le64(out + 8, r->forked_origin);
    mrt_dm_store_le64(out + 16, r->fork_seq);
    mrt_causal_link_encode(&r->genesis, out + 24);
    out[56] = r->has_snapshot ? 1 : 0;
    mrt_dm_store_le64(out + 57, r->has_snapshot ? r->snapshot_seq : 0);
}

int mrt_fork_record_decode(const void *buf, size_t len, mrt_fork_record *out)
{
    if ((buf == NULL && len > 0) || out == NULL)
        return MRT_EINVAL;
    if (len < MRT_FORK_RECORD_SIZE)
        return MRT_DAEMON_ETRUNCATED;
    if (len > MRT_FORK_RECORD_SIZE)
        return MRT_DAEMON_EINCONSISTENT;
    const uint8_t *p = buf;
    if (p[56] > 1)
        return MRT_DAEMON_EINCONSISTENT;
    mrt_fork_record r;
    r.original_origin = mrt_dm_load_le64(p);
    r.forked_origin = mrt_dm_load_le64(p + 8);
    r.fork_seq = mrt_dm_load_le64(p + 16);
    mrt_causal_link_decode(p + 24, &r.genesis);
    r.has_snapshot = p[56] == 1;
    r.snapshot_seq = mrt_dm_load_le64(p + 57);
    int rc = mrt_fork_record_verify(&r); /* a record is only ever handed out verified */
    if (rc != MRT_OK)
        return rc;
    *out = r;
    return MRT_OK;
}

int mrt_fork_host_config(const mrt_fork_record *r, const uint8_t secret[MRT_FORK_SECRET_SIZE],
                         mrt_host_config *cfg)
{
    if (r == NULL || secret == NULL || cfg == NULL)
        return MRT_EINVAL;
    if (mrt_fork_record_verify(r) != MRT_OK || mrt_fork_origin(secret) != r->forked_origin)
        return MRT_DAEMON_ELINEAGE;
    memcpy(cfg->key, secret, MRT_FORK_SECRET_SIZE);
    cfg->resume = &r->genesis;
    cfg->resume_next_parent = mrt_causal_parent_hash(&r->genesis, NULL, 0);
    return MRT_OK;
}

int mrt_fork_chain_init(mrt_causal_chain *c, const mrt_fork_record *r)
{
    if (c == NULL || r == NULL)
        return MRT_EINVAL;
    if (mrt_fork_record_verify(r) != MRT_OK)
        return MRT_DAEMON_ELINEAGE;
    return mrt_causal_chain_resume(c, r->forked_origin, &r->genesis,
                                   mrt_causal_parent_hash(&r->genesis, NULL, 0));
}

int mrt_fork_verify_lineage(uint64_t parent_origin, uint64_t fork_seq,
                            const mrt_fork_record *records, size_t n,
                            const uint8_t (*secrets)[MRT_FORK_SECRET_SIZE])
{
    if (records == NULL && n > 0)
        return MRT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const mrt_fork_record *r = &records[i];
        if (mrt_fork_record_verify(r) != MRT_OK || r->original_origin != parent_origin ||
            r->fork_seq != fork_seq)
            return MRT_DAEMON_ELINEAGE;
        if (secrets != NULL && mrt_fork_origin(secrets[i]) != r->forked_origin)
            return MRT_DAEMON_ELINEAGE;
        for (size_t j = 0; j < i; j++)
            if (records[j].forked_origin == r->forked_origin)
                return MRT_DAEMON_ELINEAGE;
    }
    return MRT_OK;
}
