package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Checks the lossless suites of one kind of target share: speculative output against
 * plain output at every γ, batches against requests alone, and how much a row's logits
 * depend on the other rows of its call.
 */
final class LosslessChecks {

    static final int[] GAMMAS = { 1, 2, 4, 8 };

    private LosslessChecks() {
    }

    static GenerationResult plain(SpeculativeDecoder decoder, int[] prompt, int newTokens) {
        return decoder
            .generate(GenerationRequest.builder(prompt).maxNewTokens(newTokens).policy(PlainPolicy::new).build());
    }

    /**
     * Every prompt at every γ of {@link #GAMMAS} with {@code draft} gives the plain
     * output, ids and text; returns the speculative runs' stats.
     */
    static GenerationStats compareAll(DecoderModel model, DecoderModel draft, List<int[]> prompts, int newTokens) {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(model, null));
        SpeculativeDecoder speculativeDecoder = new SpeculativeDecoder(new ModelPair(model, draft));
        GenerationStats total = new GenerationStats();
        for (int p = 0; p < prompts.size(); p++) {
            GenerationResult plain = plain(plainDecoder, prompts.get(p), newTokens);
            for (int gamma : GAMMAS) {
                GenerationResult speculative = speculativeDecoder.generate(GenerationRequest.builder(prompts.get(p))
                    .maxNewTokens(newTokens)
                    .policy(() -> new FixedPolicy(gamma))
                    .build());
                assertThat(speculative.tokenIds()).as("prompt %d, γ = %d, draft %s", p, gamma, draft.name())
                    .containsExactly(plain.tokenIds());
                assertThat(speculative.text()).isEqualTo(plain.text());
                total.add(speculative.stats());
            }
        }
        return total;
    }

    /**
     * Eight requests batched with {@code draft} (γ 1 to 5, every fourth plain) each give
     * their output alone, in {@code layout}; drafts were accepted.
     */
    static void assertBatchMatches(DecoderModel model, DecoderModel draft, KvStore.Layout layout, List<int[]> prompts,
            int newTokens) {
        SpeculativeDecoder alone = new SpeculativeDecoder(new ModelPair(model, null));
        try (Engine batch = new Engine(new ModelPair(model, draft),
                new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int gamma = 1 + i % 5;
                Supplier<SpeculationPolicy> policy = (i % 4 == 3) ? PlainPolicy::new : () -> new FixedPolicy(gamma);
                futures.add(batch
                    .submit(GenerationRequest.builder(prompts.get(i)).maxNewTokens(newTokens).policy(policy).build()));
            }
            GenerationStats stats = new GenerationStats();
            for (int i = 0; i < futures.size(); i++) {
                GenerationResult batched = futures.get(i).join();
                assertThat(batched.tokenIds()).as("request %d", i)
                    .containsExactly(plain(alone, prompts.get(i), newTokens).tokenIds());
                stats.add(batched.stats());
            }
            assertThat(stats.accepted()).as("speculation ran and accepted drafts").isPositive();
            assertThat(batch.layout()).contains(layout);
        }
    }

    /**
     * The largest |difference| between the logits of one 5-row call and of 5 single-row
     * calls over the same 12-token past (the first prompt's, then the second's tokens).
     */
    static float rowDependence(DecoderModel model, List<int[]> prompts) throws Exception {
        int[] past = Arrays.copyOf(prompts.get(0), 12);
        int[] next = Arrays.copyOfRange(prompts.get(1), 0, 5);
        int width = model.logitsWidth();
        float[] together;
        try (KvSequence cache = model.newCache()) {
            model.forward(new StepInput(cache, past, 1, false, null));
            together = model.forward(new StepInput(cache, next, next.length, false, null)).logits().clone();
        }
        float max = 0;
        try (KvSequence cache = model.newCache()) {
            model.forward(new StepInput(cache, past, 1, false, null));
            for (int r = 0; r < next.length; r++) {
                StepOutput out = model.forward(new StepInput(cache, new int[] { next[r] }, 1, false, null));
                for (int v = 0; v < width; v++) {
                    max = Math.max(max, Math.abs(out.logits()[v] - together[r * width + v]));
                }
            }
        }
        System.out.printf("row dependence of %s (%s kernels): %.3g%n", model.name(), model.kernelsInUse().spelling(),
                max);
        return max;
    }

}
