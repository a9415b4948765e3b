package dev.specula.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.sampling.Distributions;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Penalties, a logit bias and log-probabilities under speculation, greedy, on the
 * embedded pair: the output equals a reference written here, outside the decode loop (the
 * target fed one token at a time, the penalties applied by their textbook formulas,
 * argmax), for the draft model, prompt lookup and plain decoding alike; each token's
 * log-probability is the reference's row at that position. The sampled case is in
 * {@link LosslessSamplingTest}.
 */
class LogitsProcessingLosslessTest {

    private static final int NEW_TOKENS = 40;

    private static final int PROMPTS = 12;

    private static DecoderModel target;

    private static DecoderModel draft;

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
        prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(PROMPTS)) {
            prompts.add(encoder.text(text));
        }
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @Test
    void penalizedGreedyOutputIsTheReferencesUnderEveryProposer() throws Exception {
        TokenPenalties penalties = new TokenPenalties(0.8, 0.4, 1.3, Map.of(13, 2.5, 29, -100.0));
        SpeculativeDecoder speculative = new SpeculativeDecoder(new ModelPair(target, draft));
        SpeculativeDecoder targetOnly = new SpeculativeDecoder(new ModelPair(target, null));
        GenerationStats stats = new GenerationStats();
        int differsFromUnpenalized = 0;
        for (int p = 0; p < prompts.size(); p++) {
            int[] prompt = prompts.get(p);
            Reference reference = reference(prompt, penalties);
            GenerationResult unpenalized = targetOnly
                .generate(request(prompt, TokenPenalties.NONE).policy(PlainPolicy::new).build());
            if (!java.util.Arrays.equals(unpenalized.tokenIds(), reference.tokens())) {
                differsFromUnpenalized++;
            }
            GenerationResult plain = targetOnly.generate(request(prompt, penalties).policy(PlainPolicy::new).build());
            GenerationResult drafted = speculative
                .generate(request(prompt, penalties).policy(() -> new FixedPolicy(4)).build());
            GenerationResult lookedUp = targetOnly.generate(
                    request(prompt, penalties).policy(() -> new FixedPolicy(4)).proposer(ProposerKind.NGRAM).build());
            assertThat(plain.tokenIds()).as("plain, prompt %d", p).containsExactly(reference.tokens());
            assertThat(drafted.tokenIds()).as("draft model, prompt %d", p).containsExactly(reference.tokens());
            assertThat(lookedUp.tokenIds()).as("prompt lookup, prompt %d", p).containsExactly(reference.tokens());
            assertThat(reference.tokens()).as("the bias of -100 forbids token 29").doesNotContain(29);
            stats.add(drafted.stats());
        }
        assertThat(differsFromUnpenalized).as("the penalties change the output").isGreaterThan(PROMPTS / 2);
        assertThat(stats.accepted()).as("drafts were accepted under the penalties").isGreaterThan(stats.rounds() / 2);
    }

    @Test
    void logprobsAreTheTargetsAtEachPositionUnderSpeculation() throws Exception {
        SpeculativeDecoder speculative = new SpeculativeDecoder(new ModelPair(target, draft));
        for (int p = 0; p < 4; p++) {
            int[] prompt = prompts.get(p);
            Reference reference = reference(prompt, TokenPenalties.NONE);
            GenerationResult result = speculative
                .generate(request(prompt, TokenPenalties.NONE).policy(() -> new FixedPolicy(4)).logprobs(5).build());
            assertThat(result.tokenIds()).containsExactly(reference.tokens());
            assertThat(result.stats().accepted()).as("several tokens per round").isGreaterThan(NEW_TOKENS / 4);
            assertThat(result.logprobs()).hasSize(result.tokenIds().length);
            for (int i = 0; i < result.tokenIds().length; i++) {
                TokenLogprob expected = TokenLogprob.of(reference.rows().get(i), 0, target.logitsWidth(),
                        reference.tokens()[i], 5);
                TokenLogprob actual = result.logprobs().get(i);
                assertThat(actual.token()).isEqualTo(reference.tokens()[i]);
                assertThat(actual.logprob()).as("prompt %d, token %d", p, i)
                    .isCloseTo(expected.logprob(), within(1e-3f));
                assertThat(actual.topTokens()).as("prompt %d, token %d", p, i).containsExactly(expected.topTokens());
                assertThat(actual.topLogprobs()[0]).as("greedy: the token is the most likely")
                    .isEqualTo(actual.logprob());
            }
        }
    }

    @Test
    void logprobsOfPenalizedOutputAreTheRawRows() throws Exception {
        TokenPenalties penalties = new TokenPenalties(1.0, 0, 1.2, Map.of());
        int[] prompt = prompts.get(0);
        Reference reference = reference(prompt, penalties);
        GenerationResult result = new SpeculativeDecoder(new ModelPair(target, draft))
            .generate(request(prompt, penalties).policy(() -> new FixedPolicy(3)).logprobs(0).build());
        assertThat(result.tokenIds()).containsExactly(reference.tokens());
        for (int i = 0; i < result.tokenIds().length; i++) {
            float expected = TokenLogprob.of(reference.rows().get(i), 0, target.logitsWidth(), reference.tokens()[i], 0)
                .logprob();
            assertThat(result.logprobs().get(i).logprob()).isCloseTo(expected, within(1e-3f));
            assertThat(result.logprobs().get(i).topTokens()).isEmpty();
        }
    }

    private static GenerationRequest.Builder request(int[] prompt, TokenPenalties penalties) {
        return GenerationRequest.builder(prompt).maxNewTokens(NEW_TOKENS).ignoreEos(true).penalties(penalties);
    }

    /** The reference's tokens and the target's raw logits row at each of them. */
    private record Reference(int[] tokens, List<float[]> rows) {
    }

    /**
     * Greedy decoding outside the decode loop: one token per target call, the penalties
     * as OpenAI and Hugging Face define them (bias, then repetition over prompt and
     * output, then frequency and presence over the output).
     */
    private static Reference reference(int[] prompt, TokenPenalties penalties) throws Exception {
        int width = target.logitsWidth();
        int[] tokens = new int[NEW_TOKENS];
        List<float[]> rows = new ArrayList<>();
        Map<Integer, Integer> counts = new HashMap<>();
        Set<Integer> seen = new HashSet<>();
        for (int token : prompt) {
            seen.add(token);
        }
        try (KvSequence cache = target.newCache()) {
            int[] input = prompt;
            for (int i = 0; i < NEW_TOKENS; i++) {
                StepOutput out = target.forward(new StepInput(cache, input, 1, false, null));
                float[] row = java.util.Arrays.copyOf(out.logits(), width);
                rows.add(row.clone());
                for (Map.Entry<Integer, Double> bias : penalties.logitBias().entrySet()) {
                    row[bias.getKey()] += bias.getValue().floatValue();
                }
                float repetition = (float) penalties.repetitionPenalty();
                for (int token : seen) {
                    row[token] = row[token] > 0 ? row[token] / repetition : row[token] * repetition;
                }
                for (Map.Entry<Integer, Integer> count : counts.entrySet()) {
                    row[count.getKey()] -= (float) penalties.frequencyPenalty() * count.getValue()
                            + (float) penalties.presencePenalty();
                }
                int next = Distributions.argmax(row, 0, width);
                tokens[i] = next;
                counts.merge(next, 1, Integer::sum);
                seen.add(next);
                input = new int[] { next };
            }
        }
        return new Reference(tokens, rows);
    }

}
