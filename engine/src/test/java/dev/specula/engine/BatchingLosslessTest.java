package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.grammar.CompiledGrammar;
import dev.specula.grammar.Grammar;
import dev.specula.grammar.TokenVocabulary;
import dev.specula.kv.KvStore;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenPenalties;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Batching never changes an output: each request's greedy output under continuous
 * batching equals the same request decoded alone — with mixed prompt lengths, different
 * policies, requests joining mid-flight, cancellations — on both batch paths (padded: the
 * embedded pair's mask graphs; unpadded: a packed export).
 */
class BatchingLosslessTest {

    private static final List<String> PROMPTS = List.of("def read_config(path):\n    ",
            "class Stack:\n    \"\"\"A last-in first-out stack.\"\"\"\n\n    def __init__(self):\n        ",
            "import os\n", "def fibonacci(n):\n    if n < 2:\n        return n\n    ",
            "for line in open(name):\n    line = line.strip()\n    if not line:\n        continue\n    ", "x",
            "try:\n    import json\nexcept ImportError:\n    json = None\n\n\ndef dump(obj):\n    ",
            "def is_prime(n):\n    ", "    return sorted(items, key=lambda item: item[",
            "def main(argv):\n    parser = ");

    private static DecoderModel target;

    private static DecoderModel draft;

    private static DecoderModel packedTarget;

    private static DecoderModel packedDraft;

    private static SpeculativeDecoder alone;

    @BeforeAll
    static void load() {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        packedTarget = Fixtures.load("llama-packed");
        packedDraft = Fixtures.load("llama-draft");
        alone = new SpeculativeDecoder(new ModelPair(target, null));
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
        packedTarget.close();
        packedDraft.close();
    }

    private static Supplier<SpeculationPolicy> policy(int index) {
        return switch (index % 4) {
            case 0 -> () -> new FixedPolicy(3);
            case 1 -> PlainPolicy::new;
            case 2 -> SpeculationPolicies.factory("goodput", PolicyParameters.ofGamma(4));
            default -> () -> new FixedPolicy(6);
        };
    }

    private static GenerationRequest request(DecoderModel model, int index, int maxTokens, TokenStreamListener listener,
            CancellationToken cancellation) {
        int[] prompt = model.tokenizer().encode(PROMPTS.get(index % PROMPTS.size()), true);
        // the proposers take turns (request 4 looks up n-grams, 7 suffixes); request 8
        // predicts its own prompt (a poor prediction, still exact)
        ProposerKind proposer = switch (index % 3) {
            case 0 -> null;
            case 1 -> index % 2 == 0 ? ProposerKind.NGRAM : ProposerKind.SUFFIX;
            default -> ProposerKind.MODEL_PLUS_NGRAM;
        };
        return GenerationRequest.builder(prompt)
            .maxNewTokens(maxTokens)
            .policy(policy(index))
            .proposer(index == 8 ? null : proposer)
            .prediction(index == 8 ? model.tokenizer().encode(PROMPTS.get(index % PROMPTS.size()), false) : null)
            .listener(listener)
            .cancellation(cancellation)
            .build();
    }

    private static Engine scheduler(ModelPair models) {
        return new Engine(models, new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)));
    }

    @Test
    void paddedBatchesGiveEachRequestItsOwnOutput() {
        try (Engine batch = scheduler(new ModelPair(target, draft))) {
            assertEveryRequestMatches(batch, target, alone);
            assertThat(batch.layout()).contains(KvStore.Layout.PADDED);
        }
    }

    @Test
    void unpaddedBatchesGiveEachRequestItsOwnOutput() {
        SpeculativeDecoder packedAlone = new SpeculativeDecoder(new ModelPair(packedTarget, null));
        try (Engine batch = scheduler(new ModelPair(packedTarget, packedDraft))) {
            assertEveryRequestMatches(batch, packedTarget, packedAlone);
            assertThat(batch.layout()).contains(KvStore.Layout.PACKED);
        }
    }

    /**
     * Both graph kinds on both batch paths: torch.onnx's graph and the fused one
     * (GroupQueryAttention; in padded batches of several tokens a row its If runs the
     * decomposed attention). The embedded pair, above, is fused and padded.
     */
    @ParameterizedTest
    @CsvSource({ "llama, PADDED", "llama-fused, PADDED", "llama-fused-packed, PACKED" })
    void fixtureBatchesGiveEachRequestItsOwnOutput(String targetName, KvStore.Layout layout) {
        try (DecoderModel fixture = Fixtures.load(targetName);
                Engine batch = scheduler(new ModelPair(fixture, packedDraft))) {
            assertEveryRequestMatches(batch, fixture, new SpeculativeDecoder(new ModelPair(fixture, null)));
            assertThat(batch.layout()).contains(layout);
        }
    }

    /**
     * Mistral with a 16-token sliding window in padded batches: pads and rejected drafts
     * are masked slots inside the window of rows of different lengths, and each request
     * still decodes what it decodes alone (torch.onnx graph, and the fused one, whose
     * batched verification runs the window bias through the decomposed attention).
     */
    @ParameterizedTest
    @ValueSource(strings = { "mistral", "mistral-fused" })
    void slidingWindowBatchesGiveEachRequestItsOwnOutput(String fixture) {
        try (DecoderModel mistral = Fixtures.load(fixture);
                DecoderModel mistralDraft = Fixtures.load("mistral-draft");
                Engine batch = scheduler(new ModelPair(mistral, mistralDraft))) {
            assertEveryRequestMatches(batch, mistral, new SpeculativeDecoder(new ModelPair(mistral, null)));
            assertThat(batch.layout()).contains(KvStore.Layout.PADDED);
        }
    }

    /**
     * 10 requests of mixed lengths and policies, 6 at once, then 4 more joining while
     * those run.
     */
    private static void assertEveryRequestMatches(Engine batch, DecoderModel model, SpeculativeDecoder reference) {
        List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
        List<Integer> lengths = new ArrayList<>();
        CountDownLatch firstText = new CountDownLatch(1);
        for (int i = 0; i < 6; i++) {
            int maxTokens = 24 + 8 * (i % 3);
            lengths.add(maxTokens);
            futures
                .add(batch.submit(request(model, i, maxTokens, i == 0 ? (text) -> firstText.countDown() : null, null)));
        }
        await(firstText);
        for (int i = 6; i < 10; i++) {
            lengths.add(40);
            futures.add(batch.submit(request(model, i, 40, null, null)));
        }
        GenerationStats drafted = new GenerationStats();
        for (int i = 0; i < futures.size(); i++) {
            GenerationResult batched = futures.get(i).join();
            GenerationResult single = reference
                .generate(GenerationRequest.builder(model.tokenizer().encode(PROMPTS.get(i % PROMPTS.size()), true))
                    .maxNewTokens(lengths.get(i))
                    .policy(PlainPolicy::new)
                    .build());
            assertThat(batched.tokenIds()).as("request %d", i).containsExactly(single.tokenIds());
            assertThat(batched.text()).isEqualTo(single.text());
            drafted.add(batched.stats());
        }
        assertThat(drafted.drafted()).as("speculation ran in the batch").isPositive();
        if (model == target) {
            // the embedded draft agrees with its target (the fixture pair is random-init
            // and never does)
            assertThat(drafted.accepted()).isPositive();
        }
    }

    @Test
    void aCancelledRequestLeavesAndTheOthersAreUnchanged() {
        try (Engine batch = scheduler(new ModelPair(target, draft))) {
            CancellationToken cancellation = new CancellationToken();
            CompletableFuture<GenerationResult> cancelled = batch
                .submit(request(target, 0, 200, (text) -> cancellation.cancel(), cancellation));
            List<CompletableFuture<GenerationResult>> others = new ArrayList<>();
            for (int i = 1; i < 5; i++) {
                others.add(batch.submit(request(target, i, 32, null, null)));
            }
            assertThat(cancelled.join().finishReason()).isEqualTo(FinishReason.CANCELLED);
            assertThat(cancelled.join().tokenIds().length).isLessThan(200);
            for (int i = 0; i < others.size(); i++) {
                GenerationResult single = alone
                    .generate(GenerationRequest.builder(target.tokenizer().encode(PROMPTS.get(i + 1), true))
                        .maxNewTokens(32)
                        .policy(PlainPolicy::new)
                        .build());
                assertThat(others.get(i).join().tokenIds()).containsExactly(single.tokenIds());
            }
        }
    }

    @Test
    void sampledRequestsInABatchAreReproducibleBySeed() {
        try (Engine batch = scheduler(new ModelPair(target, draft))) {
            SamplingParams seeded = new SamplingParams(0.8, 0, 0.95, 11L);
            int[] prompt = target.tokenizer().encode(PROMPTS.get(3), true);
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                futures.add(batch.submit(GenerationRequest.builder(prompt)
                    .sampling(seeded)
                    .maxNewTokens(32)
                    .policy(() -> new FixedPolicy(4))
                    .build()));
            }
            GenerationResult alone = new SpeculativeDecoder(new ModelPair(target, draft))
                .generate(GenerationRequest.builder(prompt)
                    .sampling(seeded)
                    .maxNewTokens(32)
                    .policy(() -> new FixedPolicy(4))
                    .build());
            for (CompletableFuture<GenerationResult> future : futures) {
                assertThat(future.join().tokenIds()).containsExactly(alone.tokenIds());
            }
        }
    }

    @Test
    void promptsSharingAPrefixReuseItsKvAndKeepTheirOutputs() {
        String header = "# Utilities for parsing configuration files.\n# Every function takes a path and returns a dict.\n\n"
                + "import os\nimport sys\n\n\n";
        List<String> questions = List.of("def read_ini(path):\n    ", "def read_json(path):\n    ",
                "def read_env(path):\n    ", "def merge(a, b):\n    ");
        java.util.concurrent.atomic.AtomicLong hitTokens = new java.util.concurrent.atomic.AtomicLong();
        dev.specula.kv.PrefixCache prefixes = new dev.specula.kv.PrefixCache(64L << 20,
                new dev.specula.kv.PrefixCacheListener() {
                    @Override
                    public void onLookup(int hits, int misses) {
                        hitTokens.addAndGet(hits);
                    }
                });
        ModelPair pair = new ModelPair(target, draft);
        // direct decoding, then a batch: the first request fills the cache, the rest
        // start from it
        SpeculativeDecoder direct = new SpeculativeDecoder(pair, prefixes);
        List<int[]> prompts = new ArrayList<>();
        for (String question : questions) {
            prompts.add(target.tokenizer().encode(header + question, true));
        }
        for (int[] prompt : prompts) {
            GenerationResult cached = direct
                .generate(GenerationRequest.builder(prompt).maxNewTokens(24).policy(() -> new FixedPolicy(4)).build());
            GenerationResult single = alone
                .generate(GenerationRequest.builder(prompt).maxNewTokens(24).policy(PlainPolicy::new).build());
            assertThat(cached.tokenIds()).containsExactly(single.tokenIds());
        }
        try (Engine batch = new Engine(pair, new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)),
                prefixes)) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int[] prompt : prompts) {
                futures.add(batch.submit(
                        GenerationRequest.builder(prompt).maxNewTokens(24).policy(() -> new FixedPolicy(3)).build()));
            }
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult single = alone.generate(
                        GenerationRequest.builder(prompts.get(i)).maxNewTokens(24).policy(PlainPolicy::new).build());
                assertThat(futures.get(i).join().tokenIds()).as("batched request %d", i)
                    .containsExactly(single.tokenIds());
            }
        }
        assertThat(hitTokens.get()).as("prompt tokens served from the prefix cache").isGreaterThanOrEqualTo(2 * 7 * 16);
        assertThat(prefixes.bytes()).isPositive();
        prefixes.clear();
        assertThat(prefixes.bytes()).isZero();
    }

    @Test
    void constrainedAndPenalizedRequestsInABatchKeepTheirOutputs() {
        int[] endIds = target.config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
        CompiledGrammar json = CompiledGrammar.compile(Grammar.jsonObject(),
                TokenVocabulary.read(target.tokenizer().file()), endIds);
        TokenPenalties penalties = new TokenPenalties(0.7, 0.3, 1.2, java.util.Map.of(13, 1.5));
        List<GenerationRequest.Builder> requests = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            int[] prompt = target.tokenizer().encode(PROMPTS.get(i % PROMPTS.size()), true);
            requests.add(GenerationRequest.builder(prompt)
                .maxNewTokens(40)
                .grammar(i % 2 == 0 ? json : null)
                .penalties(i % 4 < 2 ? penalties : TokenPenalties.NONE));
        }
        try (Engine batch = scheduler(new ModelPair(target, draft))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < requests.size(); i++) {
                futures.add(batch.submit(
                        requests.get(i).policy(policy(i)).proposer(i % 3 == 1 ? ProposerKind.NGRAM : null).build()));
            }
            GenerationStats stats = new GenerationStats();
            for (int i = 0; i < futures.size(); i++) {
                GenerationResult batched = futures.get(i).join();
                GenerationResult single = alone
                    .generate(requests.get(i).policy(PlainPolicy::new).proposer(null).build());
                assertThat(batched.tokenIds()).as("request %d", i).containsExactly(single.tokenIds());
                stats.add(batched.stats());
            }
            assertThat(stats.accepted()).as("drafts were accepted in the batch").isPositive();
            assertThat(stats.grammarNanos()).as("the grammar ran in the batch").isPositive();
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            assertThat(latch.await(60, TimeUnit.SECONDS)).isTrue();
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new AssertionError(ex);
        }
    }

}
