package dev.specula.kv;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The pool of KV buffers that stores written in place give back: a buffer given back is
 * the next one taken of a size it fits (not one much smaller), and the pool keeps no more
 * bytes than its bound.
 */
class KvBuffersTest {

    @Test
    void aBufferGivenBackIsTakenAgainForAStoreItFits() {
        KvBuffers pool = new KvBuffers(1 << 20);
        ByteBuffer first = pool.take(40_000);
        assertThat(first.capacity()).isEqualTo(40_000);
        assertThat(first.isDirect()).isTrue();
        pool.give(first);
        assertThat(pool.pooledBytes()).isEqualTo(40_000);
        assertThat(pool.take(36_000)).as("fits, a little larger").isSameAs(first);
        assertThat(pool.reused()).isEqualTo(1);
        assertThat(pool.pooledBytes()).isZero();
        pool.give(first);
        ByteBuffer small = pool.take(10_000);
        assertThat(small).as("far too large for it: a new one").isNotSameAs(first);
        assertThat(small.capacity()).isEqualTo(10_000);
        assertThat(pool.take(50_000)).as("too small: a new one").isNotSameAs(first);
    }

    @Test
    void thePoolKeepsNoMoreThanItsBound() {
        KvBuffers pool = new KvBuffers(100_000);
        ByteBuffer a = pool.take(60_000);
        ByteBuffer b = pool.take(60_000);
        pool.give(a);
        pool.give(b);
        assertThat(pool.pooledBytes()).isEqualTo(60_000);
        assertThat(pool.take(60_000)).isSameAs(a);
        assertThat(pool.take(60_000)).as("b was dropped").isNotSameAs(b).isNotSameAs(a);
    }

}
