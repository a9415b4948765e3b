package dev.specula.engine;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import ai.onnxruntime.OrtException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.ForwardingDecoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A target whose weights are int4 and whose activations are quantized to int8 inside the
 * kernel ({@code quantize --scheme int4-b32-a8}: MatMulNBits accuracy_level 4,
 * fixtures/models/llama-int4-a8) computes a row exactly the same in every call of two
 * tokens or more, but differently in a call of one (ONNX Runtime's one-row paths). Its
 * graphs say so ({@code specula.min_call_tokens = 2}); the engine then never calls it
 * with one token, so speculative output equals plain output (which obeys the same rule).
 */
class Int8ActivationLosslessTest {

    private static final int NEW_TOKENS = 32;

    private static DecoderModel target;

    private static DecoderModel packedTarget;

    private static DecoderModel floatDraft;

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        target = Fixtures.load("llama-int4-a8");
        packedTarget = DecoderModel.load(Fixtures.model("llama-int4-a8").resolve("model_packed.onnx"),
                RuntimeOptions.defaults());
        floatDraft = Fixtures.load("llama");
        prompts = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(
                Int8ActivationLosslessTest.class.getResourceAsStream("/prompts/code-prompts.jsonl"),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null && prompts.size() < 16) {
                prompts.add(target.tokenizer().encode(json.readTree(line).path("prompt").asText(), true));
            }
        }
        // a one-token prompt: its first call must still carry two tokens
        prompts.add(new int[] { prompts.get(0)[0] });
    }

    @AfterAll
    static void close() {
        target.close();
        packedTarget.close();
        floatDraft.close();
    }

    @Test
    void theGraphsSayTheyNeedTwoTokensACall() throws Exception {
        JsonNode quantization = Fixtures.json(Fixtures.model("llama-int4-a8").resolve("export_info.json"))
            .path("quantization");
        assertThat(quantization.path("scheme").asText()).isEqualTo("int4-b32-a8");
        assertThat(quantization.path("accuracy_level").asInt()).isEqualTo(4);
        // its token table too (GatherBlockQuantized), which ONNX Runtime Java must run
        assertThat(quantization.path("token_table").asText()).startsWith("8-bit");
        assertThat(Files.readString(Fixtures.model("llama-int4-a8").resolve("model.onnx"), StandardCharsets.ISO_8859_1))
            .contains("GatherBlockQuantized");
        assertThat(target.minCallTokens()).isEqualTo(2);
        assertThat(packedTarget.minCallTokens()).isEqualTo(2);
        assertThat(floatDraft.minCallTokens()).isEqualTo(1);
    }

    @Test
    void everyTargetCallCarriesTwoTokensAndSpeculationChangesNothing() {
        CallSizes sizes = new CallSizes(target);
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(target, sizes, null));
        SpeculativeDecoder speculative = new SpeculativeDecoder(new ModelPair(target, sizes, floatDraft));
        GenerationStats stats = new GenerationStats();
        for (int p = 0; p < prompts.size(); p++) {
            int[] plain = generate(plainDecoder, prompts.get(p), PlainPolicy::new, null).tokenIds();
            for (int gamma : new int[] { 1, 2, 3, 4, 7 }) {
                for (ProposerKind proposer : List.of(ProposerKind.MODEL, ProposerKind.NGRAM)) {
                    GenerationResult result = generate(speculative, prompts.get(p), () -> new FixedPolicy(gamma),
                            proposer);
                    assertThat(result.tokenIds()).as("prompt %d, γ %d, %s", p, gamma, proposer).containsExactly(plain);
                    stats.add(result.stats());
                }
            }
        }
        assertThat(sizes.smallest).as("the fewest tokens of a target call").isGreaterThanOrEqualTo(2);
        assertThat(stats.accepted()).isPositive();
    }

    /**
     * The filler a two-token target's plain round verifies is the engine's, not the
     * policy's: a policy that asked for no drafts hears that it drafted none (else
     * goodput would credit the filler's acceptance to its draft, and the cost of a round
     * that must verify two tokens to γ = 1, and keep its γ too short).
     */
    @Test
    void aPolicyThatDraftsNothingIsToldItDraftedNothing() {
        List<dev.specula.policy.RoundOutcome> outcomes = new ArrayList<>();
        SpeculationPolicy never = new SpeculationPolicy() {
            @Override
            public String name() {
                return "never";
            }

            @Override
            public int draftLength(dev.specula.policy.RoundContext context) {
                return 0;
            }

            @Override
            public void observe(dev.specula.policy.RoundOutcome outcome) {
                outcomes.add(outcome);
            }
        };
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, floatDraft));
        GenerationResult result = generate(decoder, prompts.get(2), () -> never, ProposerKind.NGRAM);
        assertThat(result.stats().drafted()).as("fillers were verified").isPositive();
        assertThat(outcomes).isNotEmpty()
            .allSatisfy((outcome) -> assertThat(outcome.drafted()).as("drafted, as the policy sees it").isZero())
            .allSatisfy((outcome) -> assertThat(outcome.accepted()).isZero());
    }

    @Test
    void prefillChunksNeverLeaveOneTokenAlone() throws OrtException {
        // 4-token chunks: prompts of 9 and 13 tokens would end in a one-token chunk
        try (DecoderModel chunked = DecoderModel.load(Fixtures.model("llama-int4-a8"),
                RuntimeOptions.defaults().withPrefillChunkTokens(4))) {
            for (int length : new int[] { 5, 9, 13 }) {
                int[] prompt = Arrays.copyOf(prompts.get(1), length);
                assertThat(lastRow(chunked, prompt)).as("%d tokens in 4-token chunks", length)
                    .containsExactly(lastRow(target, prompt));
            }
        }
    }

    @Test
    void batchesGiveEachRequestThePlainOutput() {
        for (DecoderModel model : List.of(packedTarget, target)) {
            SpeculativeDecoder alone = new SpeculativeDecoder(new ModelPair(model, null));
            try (Engine batch = new Engine(new ModelPair(model, floatDraft),
                    new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
                List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    int gamma = 1 + i % 4;
                    Supplier<SpeculationPolicy> policy = (i % 4 == 3) ? PlainPolicy::new : () -> new FixedPolicy(gamma);
                    futures.add(batch.submit(GenerationRequest.builder(prompts.get(i))
                        .maxNewTokens(NEW_TOKENS)
                        .ignoreEos(true)
                        .policy(policy)
                        .proposer(i % 2 == 0 ? null : ProposerKind.NGRAM)
                        .build()));
                }
                for (int i = 0; i < futures.size(); i++) {
                    assertThat(futures.get(i).join().tokenIds()).as("%s request %d", model.files().model(), i)
                        .containsExactly(generate(alone, prompts.get(i), PlainPolicy::new, null).tokenIds());
                }
            }
        }
    }

    private static GenerationResult generate(SpeculativeDecoder decoder, int[] prompt,
            Supplier<? extends SpeculationPolicy> policy, ProposerKind proposer) {
        return decoder.generate(GenerationRequest.builder(prompt)
            .maxNewTokens(NEW_TOKENS)
            .ignoreEos(true)
            .policy(policy)
            .proposer(proposer)
            .build());
    }

    private static float[] lastRow(DecoderModel model, int[] prompt) throws OrtException {
        try (var cache = model.newCache()) {
            StepOutput out = model.forward(new StepInput(cache, prompt, 1, false, null));
            return out.logits();
        }
    }

    /** The target's steps, recording the fewest tokens a call carried. */
    private static final class CallSizes extends ForwardingDecoder {

        int smallest = Integer.MAX_VALUE;

        CallSizes(DecoderModel delegate) {
            super(delegate);
        }

        @Override
        public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
            for (StepInput input : batch) {
                smallest = Math.min(smallest, input.tokens().length);
            }
            return super.forward(batch);
        }

    }

}
