package dev.specula.engine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.sampling.SamplingParams;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * How generation ends (eos, stop strings, max tokens, cancellation, context limit) and
 * what streams.
 */
class DecodingBehaviourTest {

    private static final int[] PROMPT = { 5, 17, 42, 99, 7, 300, 12 };

    private static DecoderModel target;

    private static DecoderModel draft;

    private static SpeculativeDecoder speculative;

    private static SpeculativeDecoder plain;

    @TempDir
    Path temp;

    @BeforeAll
    static void load() {
        target = Fixtures.load("llama");
        draft = Fixtures.load("llama-draft");
        speculative = new SpeculativeDecoder(new ModelPair(target, draft));
        plain = new SpeculativeDecoder(new ModelPair(target, null));
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    private static GenerationRequest.Builder request(int maxNewTokens) {
        return GenerationRequest.builder(PROMPT).maxNewTokens(maxNewTokens).ignoreEos(true);
    }

    @Test
    void maxNewTokensIsExactEvenWhenDraftsCouldOvershoot() {
        for (int max : new int[] { 1, 2, 3, 7 }) {
            GenerationResult result = speculative.generate(request(max).policy(() -> new FixedPolicy(8)).build());
            assertThat(result.tokenIds()).hasSize(max);
            assertThat(result.finishReason()).isEqualTo(FinishReason.LENGTH);
        }
    }

    @Test
    void endOfSequenceTokenEndsTheOutput() throws Exception {
        int[] reference = plain.generate(request(24).policy(PlainPolicy::new).build()).tokenIds();
        int eos = reference[5];
        int firstAt = Arrays.stream(reference).boxed().toList().indexOf(eos);
        Path copy = Fixtures.copyOf("llama", temp);
        ObjectMapper json = new ObjectMapper();
        ObjectNode generationConfig = (ObjectNode) json.readTree(copy.resolve("generation_config.json").toFile());
        generationConfig.put("eos_token_id", eos);
        json.writeValue(copy.resolve("generation_config.json").toFile(), generationConfig);
        try (DecoderModel withEos = DecoderModel.load(copy, RuntimeOptions.defaults())) {
            ModelPair pair = new ModelPair(withEos, draft);
            GenerationResult result = new SpeculativeDecoder(pair)
                .generate(GenerationRequest.builder(PROMPT).maxNewTokens(24).policy(() -> new FixedPolicy(4)).build());
            assertThat(result.finishReason()).isEqualTo(FinishReason.EOS);
            assertThat(result.tokenIds()).containsExactly(Arrays.copyOf(reference, firstAt + 1));
            assertThat(result.text()).isEqualTo(withEos.tokenizer().decode(reference, 0, firstAt, true));
        }
    }

    @Test
    void stopStringAcrossATokenBoundaryEndsTheOutputBeforeIt() {
        GenerationResult reference = plain.generate(request(40).policy(PlainPolicy::new).build());
        int[] ids = reference.tokenIds();
        String text = reference.text();
        // a stop string made of the end of token k and the start of token k + 1
        String stop = null;
        int cut = -1;
        for (int k = 4; k < ids.length - 2 && stop == null; k++) {
            int boundary = target.tokenizer().decode(ids, 0, k, true).length();
            int end = target.tokenizer().decode(ids, 0, k + 1, true).length();
            if (boundary >= 2 && end > boundary + 1) {
                String candidate = text.substring(boundary - 2, boundary + 2);
                if (text.indexOf(candidate) == boundary - 2 && candidate.chars().noneMatch((c) -> c == 0xFFFD)) {
                    stop = candidate;
                    cut = boundary - 2;
                }
            }
        }
        assertThat(stop).as("a stop string spanning two tokens of %s", text).isNotNull();
        List<String> streamed = new ArrayList<>();
        GenerationResult result = speculative.generate(request(40).stopStrings(List.of(stop))
            .policy(() -> new FixedPolicy(4))
            .listener(streamed::add)
            .build());
        assertThat(result.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(result.text()).isEqualTo(text.substring(0, cut));
        assertThat(String.join("", streamed)).isEqualTo(result.text());
    }

    @Test
    void streamedTextEqualsTheFinalTextWhenSampling() {
        for (long seed = 1; seed <= 5; seed++) {
            List<String> streamed = new ArrayList<>();
            GenerationResult result = speculative.generate(request(32).sampling(new SamplingParams(1.0, 0, 0.95, seed))
                .policy(() -> new FixedPolicy(3))
                .listener(streamed::add)
                .build());
            assertThat(String.join("", streamed)).isEqualTo(result.text());
        }
    }

    @Test
    void sameSeedSameSample() {
        SamplingParams seeded = new SamplingParams(0.8, 40, 0.9, 1234L);
        GenerationResult first = speculative
            .generate(request(24).sampling(seeded).policy(() -> new FixedPolicy(3)).build());
        GenerationResult second = speculative
            .generate(request(24).sampling(seeded).policy(() -> new FixedPolicy(3)).build());
        assertThat(second.tokenIds()).containsExactly(first.tokenIds());
    }

    @Test
    void cancellationStopsWithinOneStep() {
        CancellationToken cancellation = new CancellationToken();
        AtomicInteger tokensAtCancel = new AtomicInteger(-1);
        List<String> pieces = new ArrayList<>();
        GenerationResult result = speculative
            .generate(request(200).policy(() -> new FixedPolicy(4)).cancellation(cancellation).listener((text) -> {
                pieces.add(text);
                if (pieces.size() == 3) {
                    cancellation.cancel();
                }
            }).build());
        assertThat(result.finishReason()).isEqualTo(FinishReason.CANCELLED);
        assertThat(result.tokenIds().length).isLessThan(200);
        // one step after the cancel at most: the round in flight (γ + 1 = 5 tokens) was
        // already committed
        assertThat(result.stats().rounds()).isLessThanOrEqualTo(pieces.size() + 1L);
    }

    @Test
    void cancelledBeforeStartDoesNoWork() {
        CancellationToken cancellation = new CancellationToken();
        cancellation.cancel();
        GenerationResult result = speculative
            .generate(request(10).cancellation(cancellation).policy(() -> new FixedPolicy(4)).build());
        assertThat(result.finishReason()).isEqualTo(FinishReason.CANCELLED);
        assertThat(result.tokenIds()).isEmpty();
        assertThat(result.stats().targetCalls()).isZero();
    }

    @Test
    void cancellationFromAnotherThreadEndsTheRun() throws Exception {
        CancellationToken cancellation = new CancellationToken();
        Thread canceller = new Thread(() -> {
            try {
                Thread.sleep(20);
            }
            catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            cancellation.cancel();
        });
        canceller.start();
        GenerationResult result = speculative
            .generate(request(target.contextLength() - PROMPT.length).policy(() -> new FixedPolicy(4))
                .cancellation(cancellation)
                .build());
        canceller.join();
        assertThat(result.finishReason()).isEqualTo(FinishReason.CANCELLED);
    }

    @Test
    void targetTokensTheDraftCannotEmbedFallBackToPlainDecoding() {
        // llama-wide: the llama tokenizer (512 ids) with 600 logit rows; the draft has
        // 512
        try (DecoderModel wide = Fixtures.load("llama-wide")) {
            int[] prompt = { 5, 17, 550, 99 };
            GenerationResult reference = new SpeculativeDecoder(new ModelPair(wide, null))
                .generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(30)
                    .ignoreEos(true)
                    .policy(PlainPolicy::new)
                    .build());
            GenerationResult speculative = new SpeculativeDecoder(new ModelPair(wide, draft))
                .generate(GenerationRequest.builder(prompt)
                    .maxNewTokens(30)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(4))
                    .build());
            assertThat(speculative.tokenIds()).containsExactly(reference.tokenIds());
            // id 550 in the prompt: the draft never runs
            assertThat(speculative.stats().draftCalls()).isZero();
        }
    }

    @Test
    void promptBeyondTheContextFailsBeforeAnyWork() {
        int context = target.contextLength();
        int[] longPrompt = new int[context - 10];
        Arrays.fill(longPrompt, 7);
        assertThatThrownBy(() -> speculative
            .generate(GenerationRequest.builder(longPrompt).maxNewTokens(11).policy(() -> new FixedPolicy(4)).build()))
            .isInstanceOf(ContextLengthExceededException.class)
            .hasMessageContaining("Prompt of " + (context - 10) + " tokens")
            .hasMessageContaining("context length " + context)
            .hasMessageContaining("at most 10");
    }

}
