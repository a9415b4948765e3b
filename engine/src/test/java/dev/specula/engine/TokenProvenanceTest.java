package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.TreeShape;
import dev.specula.sampling.SamplingParams;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every decoding path tells a listener that wants tokens how each output token was made,
 * on the embedded pair (packed graphs, which also draft trees): chains greedy and
 * sampled, trees, plain decoding, and continuous batching. The pieces spell the output's
 * text, each token comes once per index in order with the result's id, each round is its
 * accepted drafts then one target token, and the accepted tokens are the statistics'.
 */
class TokenProvenanceTest {

    private static final List<String> PROMPTS = List.of("def read_config(path):\n    ",
            "class Stack:\n    \"\"\"A last-in first-out stack.\"\"\"\n\n    def __init__(self):\n        ",
            "def fibonacci(n):\n    if n < 2:\n        return n\n    ");

    private static final int NEW_TOKENS = 48;

    private static DecoderModel target;

    private static DecoderModel draft;

    private static SpeculativeDecoder decoder;

    @BeforeAll
    static void load() {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.targetPacked(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draftPacked(), RuntimeOptions.defaults());
        decoder = new SpeculativeDecoder(new ModelPair(target, draft));
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @Test
    void greedyChainsTellAcceptedCorrectedAndBonusTokens() {
        List<OutputToken> all = new ArrayList<>();
        for (String prompt : PROMPTS) {
            Recorder recorder = new Recorder();
            GenerationResult result = decoder
                .generate(request(prompt, () -> new FixedPolicy(4), recorder).sampling(SamplingParams.GREEDY).build());
            all.addAll(assertWellMade(result, recorder));
        }
        assertThat(all).extracting(OutputToken::kind)
            .contains(TokenKind.ACCEPTED, TokenKind.CORRECTED, TokenKind.BONUS);
        assertPolicyGamma(all, 4);
    }

    @Test
    void sampledChainsTellHowEachTokenWasMade() {
        for (String prompt : PROMPTS) {
            Recorder recorder = new Recorder();
            GenerationResult result = decoder.generate(
                    request(prompt, () -> new FixedPolicy(3), recorder).sampling(new SamplingParams(0.8, 0, 1, 7L))
                        .build());
            assertThat(assertWellMade(result, recorder)).extracting(OutputToken::kind).contains(TokenKind.ACCEPTED);
        }
    }

    @Test
    void treesTellTheAcceptedPathAndTheTargetsToken() {
        for (String prompt : PROMPTS) {
            Recorder recorder = new Recorder();
            GenerationResult result = decoder
                .generate(request(prompt, () -> new FixedPolicy(4), recorder).tree(new TreeShape(3, 8)).build());
            assertThat(result.stats().treeRounds()).isPositive();
            assertThat(assertWellMade(result, recorder)).extracting(OutputToken::kind).contains(TokenKind.ACCEPTED);
        }
    }

    @Test
    void plainDecodingMakesOnlyPlainTokensOnePerRound() {
        Recorder recorder = new Recorder();
        GenerationResult result = decoder.generate(request(PROMPTS.get(0), PlainPolicy::new, recorder).build());
        List<OutputToken> tokens = assertWellMade(result, recorder);
        assertThat(tokens).extracting(OutputToken::kind).containsOnly(TokenKind.PLAIN);
        assertThat(tokens).extracting(OutputToken::gamma).containsOnly(0);
        assertThat(tokens).extracting(OutputToken::round).doesNotHaveDuplicates();
    }

    @Test
    void batchedRequestsTellTheirOwnTokens() throws Exception {
        try (Engine engine = new Engine(new ModelPair(target, draft),
                new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
            List<Recorder> recorders = new ArrayList<>();
            List<CompletableFuture<GenerationResult>> results = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                Recorder recorder = new Recorder();
                recorders.add(recorder);
                int gamma = 2 + i;
                results.add(engine.submit(request(PROMPTS.get(i), () -> new FixedPolicy(gamma), recorder).build()));
            }
            for (int i = 0; i < PROMPTS.size(); i++) {
                assertPolicyGamma(assertWellMade(results.get(i).get(), recorders.get(i)), 2 + i);
            }
        }
    }

    private static GenerationRequest.Builder request(String prompt, Supplier<? extends SpeculationPolicy> policy,
            TokenStreamListener listener) {
        return GenerationRequest.builder(target.tokenizer().encode(prompt, true))
            .maxNewTokens(NEW_TOKENS)
            .ignoreEos(true)
            .policy(policy)
            .listener(listener);
    }

    /**
     * γ is the policy's, but never drafts past max new tokens: less in the last rounds
     * (0, a plain round, when one token is left).
     */
    private static void assertPolicyGamma(List<OutputToken> tokens, int gamma) {
        assertThat(tokens.get(0).gamma()).isEqualTo(gamma);
        assertThat(tokens).allSatisfy((token) -> assertThat(token.gamma()).isBetween(0, gamma));
        assertThat(tokens).filteredOn((token) -> token.kind() == TokenKind.PLAIN)
            .allSatisfy((token) -> assertThat(token.gamma()).isZero());
    }

    /**
     * Checks what {@code recorder} heard against {@code result}; the output's tokens, one
     * entry per token.
     */
    private static List<OutputToken> assertWellMade(GenerationResult result, Recorder recorder) {
        assertThat(result.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(recorder.text()).isEqualTo(result.text());
        List<OutputToken> tokens = recorder.tokens();
        assertThat(tokens).extracting(OutputToken::index)
            .containsExactlyElementsOf(java.util.stream.IntStream.range(0, result.tokenIds().length).boxed().toList());
        assertThat(tokens.stream().mapToInt(OutputToken::id).toArray()).containsExactly(result.tokenIds());
        int rounds = 0;
        for (int i = 0; i < tokens.size(); i++) {
            OutputToken token = tokens.get(i);
            boolean lastOfRound = i == tokens.size() - 1 || tokens.get(i + 1).round() != token.round();
            assertThat(token.kind() != TokenKind.ACCEPTED).as("token %d ends its round: %s", i, token)
                .isEqualTo(lastOfRound);
            if (token.gamma() == 0) {
                assertThat(token.kind()).as("a round of γ 0 drafts nothing").isEqualTo(TokenKind.PLAIN);
            }
            if (lastOfRound) {
                rounds++;
                assertThat(token.round()).isEqualTo(rounds);
            }
        }
        // a round never runs past max new tokens: every accepted draft is in the output
        assertThat(tokens.stream().filter((token) -> token.kind() == TokenKind.ACCEPTED).count())
            .isEqualTo(result.stats().accepted());
        assertThat((long) rounds).isEqualTo(result.stats().rounds());
        return tokens;
    }

    /** Keeps every piece; each call's pieces must spell its text. */
    private static final class Recorder implements TokenStreamListener {

        private final StringBuilder text = new StringBuilder();

        private final List<OutputToken> pieces = new ArrayList<>();

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
            assertThat(String.join("", tokens.stream().map(OutputToken::text).toList())).isEqualTo(text);
            this.text.append(text);
            pieces.addAll(tokens);
        }

        synchronized String text() {
            return text.toString();
        }

        /** The pieces of each token joined. */
        synchronized List<OutputToken> tokens() {
            List<OutputToken> tokens = new ArrayList<>();
            for (OutputToken piece : pieces) {
                int last = tokens.size() - 1;
                if (last >= 0 && tokens.get(last).index() == piece.index()) {
                    tokens.set(last, tokens.get(last).extendedBy(piece.text()));
                }
                else {
                    tokens.add(piece);
                }
            }
            return tokens;
        }

    }

}
