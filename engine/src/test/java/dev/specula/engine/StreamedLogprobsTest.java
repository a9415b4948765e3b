package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What a streaming listener hears of the log-probabilities, on the embedded pair: each
 * output token's on the first piece of its text ({@link OutputToken#logprob()}), once and
 * in order, so that together they are the result's; the prompt's
 * ({@link TokenStreamListener#onPromptLogprobs}) once, before any text. Alone and in a
 * batch, greedy and sampled, with stop strings that hold text back.
 */
class StreamedLogprobsTest {

    private static final List<String> PROMPTS = List.of("def read_config(path):\n    ",
            "class Stack:\n    \"\"\"A last-in first-out stack.\"\"\"\n\n    def __init__(self):\n        ",
            "def fibonacci(n):\n    if n < 2:\n        return n\n    ");

    private static DecoderModel target;

    private static DecoderModel draft;

    @BeforeAll
    static void load() {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.targetPacked(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draftPacked(), RuntimeOptions.defaults());
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @Test
    void eachTokensLogprobStreamsOnceWithTheFirstPieceOfItsText() {
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft));
        for (String prompt : PROMPTS) {
            for (SamplingParams sampling : List.of(SamplingParams.GREEDY, new SamplingParams(0.8, 0, 1, 11L))) {
                Recorder recorder = new Recorder();
                GenerationResult result = decoder.generate(request(prompt, recorder).sampling(sampling).build());
                recorder.assertHeard(result);
            }
        }
    }

    @Test
    void batchedRequestsStreamTheirOwnLogprobs() {
        try (Engine engine = new Engine(new ModelPair(target, draft),
                new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
            List<Recorder> recorders = new ArrayList<>();
            List<CompletableFuture<GenerationResult>> results = new ArrayList<>();
            for (String prompt : PROMPTS) {
                Recorder recorder = new Recorder();
                recorders.add(recorder);
                results.add(engine.submit(request(prompt, recorder).build()));
            }
            for (int i = 0; i < PROMPTS.size(); i++) {
                recorders.get(i).assertHeard(results.get(i).join());
            }
        }
    }

    @Test
    void aStopStringThatHoldsTextBackKeepsEachLogprobOnce() {
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft));
        for (String prompt : PROMPTS) {
            // newlines may start the stop string: held until the next token settles them
            Recorder recorder = new Recorder();
            GenerationResult result = decoder
                .generate(request(prompt, recorder).stopStrings(List.of("\n\n\n\n\n\n", "    #")).build());
            recorder.assertHeard(result);
        }
    }

    private static GenerationRequest.Builder request(String prompt, TokenStreamListener listener) {
        return GenerationRequest.builder(target.tokenizer().encode(prompt, true))
            .maxNewTokens(40)
            .policy(() -> new FixedPolicy(3))
            .proposer(ProposerKind.MODEL)
            .logprobs(2)
            .promptLogprobs(1)
            .listener(listener);
    }

    /** What a listener that wants tokens heard, in order. */
    private static final class Recorder implements TokenStreamListener {

        private final StringBuilder text = new StringBuilder();

        private final List<OutputToken> pieces = new ArrayList<>();

        private List<TokenLogprob> promptLogprobs;

        private int promptCalls;

        private boolean textBeforePrompt;

        @Override
        public void onText(String text) {
            throw new AssertionError("A listener that wants tokens hears onTokens only");
        }

        @Override
        public boolean wantsTokens() {
            return true;
        }

        @Override
        public synchronized void onTokens(String text, List<OutputToken> tokens) {
            textBeforePrompt |= promptLogprobs == null;
            this.text.append(text);
            pieces.addAll(tokens);
        }

        @Override
        public synchronized void onPromptLogprobs(List<TokenLogprob> logprobs) {
            promptCalls++;
            promptLogprobs = logprobs;
        }

        synchronized void assertHeard(GenerationResult result) {
            assertThat(result.logprobs()).hasSize(result.tokenIds().length);
            assertThat(text.toString()).isEqualTo(result.text());
            List<TokenLogprob> streamed = new ArrayList<>();
            int lastIndex = -1;
            for (OutputToken piece : pieces) {
                boolean first = piece.index() != lastIndex;
                assertThat(piece.logprob() != null).as("piece %s is its token's first", piece).isEqualTo(first);
                if (first) {
                    assertThat(piece.index()).isEqualTo(lastIndex + 1);
                    assertThat(piece.logprob().token()).isEqualTo(piece.id());
                    streamed.add(piece.logprob());
                }
                lastIndex = piece.index();
            }
            assertThat(streamed).containsExactlyElementsOf(result.logprobs());
            assertThat(promptCalls).isEqualTo(1);
            assertThat(textBeforePrompt).as("text came before the prompt's log-probabilities").isFalse();
            assertThat(promptLogprobs).containsExactlyElementsOf(result.promptLogprobs())
                .hasSize(result.promptTokens() - 1);
        }

    }

}
