package dev.specula.kv;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.policy.PlainPolicy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

/**
 * The prefix cache only ever seeds a request with KV computed over exactly its own
 * prefix, keeps blocks alive while a seed reads them, and copies each layer once per
 * store.
 */
class PrefixCacheTest {

    private static final int B = PrefixCache.BLOCK;

    private static DecoderModel model;

    @BeforeAll
    static void load() {
        model = Fixtures.load("llama");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Tokens start, start + 1, ... (a block when count = BLOCK). */
    private static int[] run(int start, int count) {
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) {
            tokens[i] = start + i;
        }
        return tokens;
    }

    private static int[] concat(int[]... parts) {
        int[] all = new int[Arrays.stream(parts).mapToInt((part) -> part.length).sum()];
        int at = 0;
        for (int[] part : parts) {
            System.arraycopy(part, 0, all, at, part.length);
            at += part.length;
        }
        return all;
    }

    private static KvSequence prefilled(int[] prompt) throws Exception {
        KvSequence cache = model.newCache();
        model.forward(new StepInput(cache, prompt, 1, false, null));
        return cache;
    }

    /**
     * Each layer's key and value bytes of the cache's first {@code count} tokens: [2 *
     * layers][kvHeads * count * headDim].
     */
    private static byte[][] tokenBytes(KvSequence cache, int count) throws Exception {
        ByteBuffer[][] copies = cache.copyTokens(0, count);
        byte[][] bytes = new byte[2 * copies[0].length][];
        for (int kind = 0; kind < 2; kind++) {
            for (int layer = 0; layer < copies[kind].length; layer++) {
                ByteBuffer buffer = copies[kind][layer];
                bytes[kind * copies[0].length + layer] = new byte[buffer.remaining()];
                buffer.get(bytes[kind * copies[0].length + layer]);
            }
        }
        return bytes;
    }

    @Test
    void blocksWhoseChainHashesCollideNeverShareKv() throws Exception {
        int[] a1 = run(100, B);
        int[] d1 = a1.clone();
        d1[3] += 1; // (+1, −31) at adjacent positions leaves Arrays.hashCode unchanged
        d1[4] -= 31;
        assertThat(Arrays.hashCode(d1)).isEqualTo(Arrays.hashCode(a1));
        int[] x = run(200, B);
        int[] y = run(300, B);
        int[] tail = { 7, 8 };
        String identity = model.kvIdentity();
        PrefixCache prefixes = new PrefixCache(64L << 20, PrefixCacheListener.NONE);
        int[] withY = concat(a1, y, tail);
        int[] collider = concat(d1, x, tail);
        int[] request = concat(a1, x, tail);
        try (KvSequence first = prefilled(withY); KvSequence second = prefilled(collider)) {
            prefixes.store(identity, withY, first);
            prefixes.store(identity, collider, second);
        }
        try (KvSequence seeded = model.newCache(); KvSequence clean = prefilled(request)) {
            int hit = prefixes.seed(identity, request, seeded);
            assertThat(hit).as("tokens of [A1, X, ...] seeded when [A1, Y] and [D1, X] are cached").isEqualTo(B);
            assertThat(tokenBytes(seeded, hit)).isDeepEqualTo(tokenBytes(clean, hit));
        }
        // end to end: decoding with the cache equals decoding without it
        try (Engine plain = new Engine(new ModelPair(model, null), Engine.Settings.defaults());
                Engine cached = new Engine(new ModelPair(model, null), Engine.Settings.defaults(),
                        new PrefixCache(64L << 20, PrefixCacheListener.NONE))) {
            for (int[] prompt : List.of(withY, collider, request)) {
                GenerationRequest generation = GenerationRequest.builder(prompt)
                    .maxNewTokens(16)
                    .policy(PlainPolicy::new)
                    .build();
                assertThat(cached.generate(generation).tokenIds()).as("prompt %s", Arrays.toString(prompt))
                    .containsExactly(plain.generate(generation).tokenIds());
            }
        }
        prefixes.clear();
    }

    /**
     * A store written in place gives the prefix cache its tokens' bytes from its own
     * buffers, and takes a seeded prefix into them: the same bytes, and the same logits
     * after it, as the copying store of the same graph.
     */
    @Test
    void aStoreWrittenInPlaceStoresAndTakesPrefixes() throws Exception {
        int[] prompt = concat(run(20, B), run(60, B), run(140, B), new int[] { 7, 8, 9 });
        int[] next = { 31, 32, 33, 34 };
        try (DecoderModel inPlace = Fixtures.load("llama-fused");
                DecoderModel copying = DecoderModel.load(Fixtures.model("llama-fused"),
                        RuntimeOptions.defaults().withKvInPlace(false));
                KvSequence written = inPlace.newCache();
                KvSequence copied = copying.newCache();
                KvSequence seeded = inPlace.newCache()) {
            assertThat(written.store().writesInPlace()).isTrue();
            inPlace.forward(new StepInput(written, prompt, 1, false, null));
            copying.forward(new StepInput(copied, prompt, 1, false, null));
            assertThat(tokenBytes(written, 3 * B)).isDeepEqualTo(tokenBytes(copied, 3 * B));
            PrefixCache prefixes = new PrefixCache(64L << 20, PrefixCacheListener.NONE);
            prefixes.store(inPlace.kvIdentity(), prompt, written);
            assertThat(prefixes.seed(inPlace.kvIdentity(), prompt, seeded)).isEqualTo(3 * B);
            assertThat(seeded.store().capacity()).as("room after the prefix").isGreaterThan(3 * B);
            int[] rest = Arrays.copyOfRange(prompt, 3 * B, prompt.length);
            inPlace.forward(new StepInput(seeded, rest, 1, false, null));
            float[] expected = copying.forward(new StepInput(copied, next, next.length, false, null)).logits();
            float[] actual = inPlace.forward(new StepInput(seeded, next, next.length, false, null)).logits();
            for (int i = 0; i < expected.length; i++) {
                assertThat(actual[i]).as("logit %d", i).isCloseTo(expected[i], offset(1e-4f));
            }
            prefixes.clear();
        }
    }

    @Test
    void evictionRacingSeedsNeverClosesBlocksInUse() throws Exception {
        int prompts = 6;
        List<int[]> all = new ArrayList<>();
        List<byte[][]> expected = new ArrayList<>();
        List<KvSequence> sources = new ArrayList<>();
        for (int p = 0; p < prompts; p++) {
            int[] prompt = concat(run(50, B), run(100 + 20 * p, B), run(400 - 10 * p, B), new int[] { 9 });
            all.add(prompt);
            KvSequence cache = prefilled(prompt);
            sources.add(cache);
            expected.add(tokenBytes(cache, 3 * B));
        }
        long blockBytes = 2L * model.signature().layers() * model.signature().kvHeads() * B
                * model.signature().headDim() * 4;
        ThreadLocal<int[]> lastLookup = ThreadLocal.withInitial(() -> new int[1]);
        PrefixCache prefixes = new PrefixCache(4 * blockBytes, new PrefixCacheListener() {
            @Override
            public void onLookup(int hitTokens, int missTokens) {
                lastLookup.get()[0] = hitTokens;
            }
        });
        String identity = model.kvIdentity();
        AtomicBoolean stop = new AtomicBoolean();
        ExecutorService threads = Executors.newFixedThreadPool(3);
        try {
            Future<?> storer = threads.submit(() -> {
                for (int round = 0; round < 400; round++) {
                    int p = round % prompts;
                    prefixes.store(identity, all.get(p), sources.get(p));
                }
                stop.set(true);
                return null;
            });
            List<Future<Integer>> seeders = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                int offset = t;
                seeders.add(threads.submit(() -> {
                    int seeds = 0;
                    for (int round = 0; !stop.get() || round < 50; round++) {
                        int p = (round + offset) % prompts;
                        try (KvSequence cache = model.newCache()) {
                            int seeded = prefixes.seed(identity, all.get(p), cache);
                            assertThat(seeded).as("tokens seeded of the %d the lookup found", lastLookup.get()[0])
                                .isEqualTo(lastLookup.get()[0]);
                            if (seeded > 0) {
                                byte[][] got = tokenBytes(cache, seeded);
                                for (int i = 0; i < got.length; i++) {
                                    assertThat(got[i]).isEqualTo(firstTokens(expected.get(p)[i], seeded, 3 * B));
                                }
                                seeds++;
                            }
                        }
                    }
                    return seeds;
                }));
            }
            storer.get(120, TimeUnit.SECONDS);
            int seeds = 0;
            for (Future<Integer> seeder : seeders) {
                seeds += seeder.get(120, TimeUnit.SECONDS);
            }
            assertThat(seeds).as("seeds that found blocks").isPositive();
        }
        finally {
            stop.set(true);
            threads.shutdownNow();
            sources.forEach(KvSequence::close);
            prefixes.clear();
        }
    }

    /**
     * The bytes of the first {@code count} of {@code total} tokens in a [kvHeads, total,
     * headDim] layer.
     */
    private static byte[] firstTokens(byte[] layer, int count, int total) {
        int heads = model.signature().kvHeads();
        int tokenBytes = layer.length / heads / total;
        byte[] out = new byte[heads * count * tokenBytes];
        for (int head = 0; head < heads; head++) {
            System.arraycopy(layer, head * total * tokenBytes, out, head * count * tokenBytes, count * tokenBytes);
        }
        return out;
    }

    @Test
    void storingALongPromptCopiesEachLayerOnce() throws Exception {
        int[] prompt = new int[2048];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + (i * 37) % 500;
        }
        assertThat(model.contextLength()).isGreaterThanOrEqualTo(prompt.length);
        PrefixCache prefixes = new PrefixCache(1L << 30, PrefixCacheListener.NONE);
        try (KvSequence cache = prefilled(prompt)) {
            long before = NativeTensors.STORE_LAYER_COPIES.get();
            prefixes.store(model.kvIdentity(), prompt, cache);
            long copies = NativeTensors.STORE_LAYER_COPIES.get() - before;
            assertThat(prefixes.blockCount()).isEqualTo((prompt.length - 1) / B);
            assertThat(copies).as("whole-layer copies to store %d blocks", prefixes.blockCount())
                .isEqualTo(2L * model.signature().layers());
        }
        finally {
            prefixes.clear();
        }
    }

    @Test
    void storingALongPromptCopiesNoMoreBlocksThanTheCacheCanHold() throws Exception {
        int[] prompt = new int[2048];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + (i * 41) % 500;
        }
        long blockBytes = 2L * model.signature().layers() * model.signature().kvHeads() * B
                * model.signature().headDim() * 4;
        PrefixCache prefixes = new PrefixCache(4 * blockBytes, PrefixCacheListener.NONE);
        try (KvSequence cache = prefilled(prompt)) {
            long before = NativeTensors.STORE_TOKENS_COPIED.get();
            prefixes.store(model.kvIdentity(), prompt, cache);
            long copied = NativeTensors.STORE_TOKENS_COPIED.get() - before;
            assertThat(prefixes.blockCount()).isEqualTo(4);
            assertThat(copied).as("tokens copied to keep 4 blocks of %d", B).isEqualTo(4L * B);
        }
        finally {
            prefixes.clear();
        }
    }

}
