package dev.specula.engine;

import java.util.function.Supplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import dev.specula.Fixtures;
import dev.specula.grammar.CompiledGrammar;
import dev.specula.grammar.Grammar;
import dev.specula.grammar.GrammarMatcher;
import dev.specula.grammar.TokenVocabulary;
import dev.specula.kv.KvSequence;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.sampling.ChiSquare;
import dev.specula.sampling.Distributions;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenPenalties;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Speculative sampling is lossless: the first two generated tokens, over thousands of
 * seeded runs, follow the target's own distribution P(x1)·P(x2 | x1) — computed exactly
 * from the target's logits — as closely as target-only sampling does. Pearson's
 * chi-square against the exact distribution must stay under its 99.9% critical value for
 * the sample size; the same bound rejects the draft's distribution (power check).
 *
 * <p>
 * Models: a random-init Llama target and a different random-init draft with the same
 * tokenizer (fixtures), small enough for thousands of runs; the rule's correctness does
 * not depend on the weights.
 */
class LosslessSamplingTest {

    private static final int RUNS = 3000;

    private static final int[] PROMPT = { 5, 17, 42, 99, 7 };

    private static DecoderModel target;

    private static DecoderModel draft;

    @BeforeAll
    static void load() {
        target = Fixtures.load("llama");
        draft = Fixtures.load("llama-draft");
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @ParameterizedTest(name = "temperature {0}, top-p {1}")
    @CsvSource({ "0.7, 1.0", "1.0, 1.0", "0.7, 0.9", "1.0, 0.9" })
    void firstTwoTokensFollowTheTargetDistribution(double temperature, double topP) throws Exception {
        SamplingParams params = new SamplingParams(temperature, 0, topP, null);
        Exact exact = exactDistribution(target, params);

        double[] speculative = chiSquare(exact, new ModelPair(target, draft), params, () -> new FixedPolicy(3));
        double[] plain = chiSquare(exact, new ModelPair(target, null), params, PlainPolicy::new);
        double[] draftOnly = chiSquare(exact, new ModelPair(draft, null), params, PlainPolicy::new);

        assertThat(speculative[0]).as("speculative chi-square, df %s", speculative[1])
            .isLessThan(ChiSquare.critical(speculative[1]));
        assertThat(plain[0]).as("target-only chi-square, df %s", plain[1]).isLessThan(ChiSquare.critical(plain[1]));
        assertThat(draftOnly[0]).as("the bound has power: the draft's own samples fail it")
            .isGreaterThan(ChiSquare.critical(draftOnly[1]));
    }

    /**
     * Draft trees of width 2 and 3 (recursive rejection over deterministic candidates):
     * the packed fixture as target and draft (trees need the attention bias), 3 new
     * tokens so a second round verifies a tree after x1.
     */
    @ParameterizedTest(name = "tree width {0}")
    @CsvSource({ "2", "3" })
    void draftTreesKeepTheTargetDistribution(int width) throws Exception {
        try (DecoderModel packed = Fixtures.load("llama-packed");
                DecoderModel packedDraft = Fixtures.load("llama-packed")) {
            SamplingParams params = new SamplingParams(1.0, 0, 1.0, null);
            Exact exact = exactDistribution(packed, params);
            GenerationStats stats = new GenerationStats();
            SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(packed, packedDraft));
            int vocabulary = packed.logitsWidth();
            long[] counts = new long[vocabulary * vocabulary];
            for (int seed = 0; seed < RUNS; seed++) {
                GenerationResult result = decoder.generate(GenerationRequest.builder(PROMPT)
                    .sampling(new SamplingParams(1.0, 0, 1.0, (long) seed))
                    .maxNewTokens(3)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(3))
                    .tree(new dev.specula.proposer.TreeShape(width, 8))
                    .build());
                counts[result.tokenIds()[0] * vocabulary + result.tokenIds()[1]]++;
                stats.add(result.stats());
            }
            double[] fit = ChiSquare.statistic(counts, exact.joint, RUNS);
            assertThat(stats.treeRounds()).as("every run verified trees").isGreaterThanOrEqualTo(RUNS);
            assertThat(stats.meanTreeNodes()).as("trees wider than a chain").isGreaterThan(3);
            assertThat(fit[0]).as("chi-square, df %s", fit[1]).isLessThan(ChiSquare.critical(fit[1]));
        }
    }

    /**
     * The GRIFFIN feature head, in chains and in trees of width 3: a random-init head
     * over the llama fixture exported with last_hidden_state. The first round is the
     * target's alone (the head reads the features of the prompt it feeds), so 3 new
     * tokens let the head draft x2 and x3 in the second.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({ "chain", "tree" })
    void theFeatureHeadKeepsTheTargetDistribution(String shape) throws Exception {
        try (DecoderModel hidden = Fixtures.load("llama-hidden-packed");
                DecoderModel head = Fixtures.load("griffin-random")) {
            SamplingParams params = new SamplingParams(1.0, 0, 1.0, null);
            Exact exact = exactDistribution(hidden, params);
            SpeculativeDecoder decoder = new SpeculativeDecoder(ModelPair.withHead(hidden, null, head));
            int vocabulary = hidden.logitsWidth();
            long[] counts = new long[vocabulary * vocabulary];
            GenerationStats stats = new GenerationStats();
            for (int seed = 0; seed < RUNS; seed++) {
                GenerationResult result = decoder.generate(GenerationRequest.builder(PROMPT)
                    .sampling(new SamplingParams(1.0, 0, 1.0, (long) seed))
                    .maxNewTokens(4)
                    .ignoreEos(true)
                    .policy(() -> new FixedPolicy(3))
                    .tree(shape.equals("tree") ? new dev.specula.proposer.TreeShape(3, 8) : null)
                    .build());
                assertThat(result.proposer()).isEqualTo("griffin");
                counts[result.tokenIds()[0] * vocabulary + result.tokenIds()[1]]++;
                stats.add(result.stats());
            }
            double[] fit = ChiSquare.statistic(counts, exact.joint, RUNS);
            if (shape.equals("tree")) {
                assertThat(stats.treeRounds()).as("every run verified a tree").isGreaterThanOrEqualTo(RUNS);
                assertThat(stats.meanTreeNodes()).as("trees wider than a chain").isGreaterThan(3);
            }
            else {
                assertThat(stats.drafted()).as("the head drafted in every run").isGreaterThanOrEqualTo(RUNS);
            }
            assertThat(fit[0]).as("chi-square, df %s", fit[1]).isLessThan(ChiSquare.critical(fit[1]));
        }
    }

    @Test
    void promptLookupKeepsTheTargetDistribution() throws Exception {
        // a prompt that repeats: the lookup proposes from the first token on (one-hot
        // proposals, accepted with probability p(x))
        int[] repeating = { 5, 17, 42, 99, 5, 17, 42, 99, 5, 17 };
        SamplingParams params = new SamplingParams(1.0, 0, 1.0, null);
        Exact exact = exactDistribution(target, params, repeating);
        GenerationStats stats = new GenerationStats();

        // 3 new tokens: the second round proposes after x1 too
        double[] lookedUp = chiSquare(exact, new ModelPair(target, null), params, () -> new FixedPolicy(3), repeating,
                3, stats);

        assertThat(stats.drafted()).as("the lookup proposed in every run").isGreaterThanOrEqualTo(RUNS);
        assertThat(lookedUp[0]).as("chi-square, df %s", lookedUp[1]).isLessThan(ChiSquare.critical(lookedUp[1]));
    }

    @Test
    void stoppingDraftsOnTheDraftsOwnDistributionKeepsTheTargetDistribution() throws Exception {
        // adaptive policies (confidence, AdaEDL, GammaTune+, LDLP's threshold) stop
        // drafting on what the draft
        // saw: a draft token is proposed only if q(d) ≥ 1/|V|, about half of them here
        SamplingParams params = new SamplingParams(1.0, 0, 1.0, null);
        Exact exact = exactDistribution(target, params);
        int width = draft.logitsWidth();
        int[] stops = new int[1];
        Supplier<SpeculationPolicy> stopping = () -> new SpeculationPolicy() {
            @Override
            public String name() {
                return "stop-below-uniform";
            }

            @Override
            public int draftLength(dev.specula.policy.RoundContext context) {
                return 3;
            }

            @Override
            public boolean shouldPropose(dev.specula.policy.DraftCandidate candidate) {
                boolean propose = candidate.tokenProbability() >= 1.0 / width;
                if (!propose) {
                    stops[0]++;
                }
                return propose;
            }

            @Override
            public void observe(dev.specula.policy.RoundOutcome outcome) {
            }
        };

        double[] speculative = chiSquare(exact, new ModelPair(target, draft), params, stopping);

        assertThat(stops[0]).as("the rule did stop drafting").isGreaterThan(RUNS / 10);
        assertThat(speculative[0]).as("chi-square, df %s", speculative[1])
            .isLessThan(ChiSquare.critical(speculative[1]));
    }

    @Test
    void penaltiesAndBiasKeepThePenalizedTargetDistribution() throws Exception {
        // the penalized target is the target: drafts are drawn from draft rows penalized
        // the same way, and verified against penalized target rows
        SamplingParams params = new SamplingParams(1.0, 0, 1.0, null);
        Exact unpenalized = exactDistribution(target, params);
        // the bias forbids the likeliest first token: the penalties change what is drawn
        double[] unpenalizedFirst = firstTokens(unpenalized.joint, unpenalized.width);
        int likeliest = 0;
        for (int token = 1; token < unpenalizedFirst.length; token++) {
            likeliest = unpenalizedFirst[token] > unpenalizedFirst[likeliest] ? token : likeliest;
        }
        TokenPenalties penalties = new TokenPenalties(1.5, 0.5, 1.3, java.util.Map.of(likeliest, -100.0, 3, 4.0));
        Exact penalized = exactDistribution(target, params, PROMPT, penalties);

        long[] speculative = counts(new ModelPair(target, draft), params, () -> new FixedPolicy(3), PROMPT, 2,
                penalties, null, new GenerationStats());
        long[] lookedUp = counts(new ModelPair(target, null), params, () -> new FixedPolicy(3),
                new int[] { 5, 17, 42, 99, 5, 17, 42, 99, 5, 17 }, 2, penalties, null, new GenerationStats());
        Exact penalizedRepeating = exactDistribution(target, params, new int[] { 5, 17, 42, 99, 5, 17, 42, 99, 5, 17 },
                penalties);

        double[] fit = ChiSquare.statistic(speculative, penalized.joint, RUNS);
        double[] lookupFit = ChiSquare.statistic(lookedUp, penalizedRepeating.joint, RUNS);
        // the joint's bins are mostly pooled (512 x 512 pairs): the power shows on x1
        // alone
        int width = penalized.width;
        double[] firstFit = ChiSquare.statistic(firstTokens(speculative, width), firstTokens(penalized.joint, width),
                RUNS);
        double[] unpenalizedFit = ChiSquare.statistic(firstTokens(speculative, width),
                firstTokens(unpenalized.joint, width), RUNS);
        assertThat(firstFit[0]).as("x1, chi-square, df %s", firstFit[1]).isLessThan(ChiSquare.critical(firstFit[1]));
        assertThat(fit[0]).as("draft model, chi-square, df %s", fit[1]).isLessThan(ChiSquare.critical(fit[1]));
        assertThat(lookupFit[0]).as("prompt lookup, chi-square, df %s", lookupFit[1])
            .isLessThan(ChiSquare.critical(lookupFit[1]));
        assertThat(unpenalizedFit[0]).as("the bound has power: the unpenalized distribution fails it")
            .isGreaterThan(ChiSquare.critical(unpenalizedFit[1]));
    }

    @Test
    void aGrammarKeepsTheConstrainedTargetDistribution() throws Exception {
        // JSON mode: each target row masked after the tokens before it, drafts sampled
        // from draft rows masked the same way; the grammar forbids most of the vocabulary
        int[] endIds = target.config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonObject(),
                TokenVocabulary.read(target.tokenizer().file()), endIds);
        SamplingParams params = new SamplingParams(1.0, 0, 1.0, null);
        int width = target.logitsWidth();
        double[] joint = new double[width * width];
        GrammarMatcher matcher = grammar.newMatcher();
        float[] first;
        try (KvSequence cache = target.newCache()) {
            float[] row = target.forward(new StepInput(cache, PROMPT, 1, false, null)).logits().clone();
            matcher.mask(row, 0, width);
            first = Distributions.sampling(row, 0, width, params);
        }
        int allowedFirst = 0;
        for (int x1 = 0; x1 < width; x1++) {
            if (first[x1] == 0) {
                continue;
            }
            allowedFirst++;
            int[] extended = java.util.Arrays.copyOf(PROMPT, PROMPT.length + 1);
            extended[PROMPT.length] = x1;
            try (KvSequence cache = target.newCache()) {
                float[] row = target.forward(new StepInput(cache, extended, 1, false, null)).logits().clone();
                int mark = matcher.mark();
                matcher.advance(x1);
                matcher.mask(row, 0, width);
                matcher.resetTo(mark);
                float[] second = Distributions.sampling(row, 0, width, params);
                for (int x2 = 0; x2 < width; x2++) {
                    joint[x1 * width + x2] = (double) first[x1] * second[x2];
                }
            }
        }
        Exact exact = new Exact(joint, width);
        Exact unconstrained = exactDistribution(target, params);

        long[] speculative = counts(new ModelPair(target, draft), params, () -> new FixedPolicy(3), PROMPT, 2,
                TokenPenalties.NONE, grammar, new GenerationStats());
        double[] fit = ChiSquare.statistic(speculative, exact.joint, RUNS);
        double[] unconstrainedFit = ChiSquare.statistic(speculative, unconstrained.joint, RUNS);

        assertThat(allowedFirst).as("the grammar allows few first tokens").isLessThan(width / 4);
        assertThat(fit[0]).as("chi-square, df %s", fit[1]).isLessThan(ChiSquare.critical(fit[1]));
        assertThat(unconstrainedFit[0]).as("the bound has power: the unconstrained distribution fails it")
            .isGreaterThan(ChiSquare.critical(unconstrainedFit[1]));
    }

    /**
     * Observed counts of (x1, x2) over RUNS seeded generations, against the exact joint
     * distribution.
     */
    private static double[] chiSquare(Exact exact, ModelPair models, SamplingParams params,
            Supplier<? extends SpeculationPolicy> policy) {
        return chiSquare(exact, models, params, policy, PROMPT, 2, new GenerationStats());
    }

    private static double[] chiSquare(Exact exact, ModelPair models, SamplingParams params,
            Supplier<? extends SpeculationPolicy> policy, int[] prompt, int maxNewTokens, GenerationStats stats) {
        return ChiSquare.statistic(
                counts(models, params, policy, prompt, maxNewTokens, TokenPenalties.NONE, null, stats), exact.joint,
                RUNS);
    }

    private static long[] counts(ModelPair models, SamplingParams params, Supplier<? extends SpeculationPolicy> policy,
            int[] prompt, int maxNewTokens, TokenPenalties penalties, CompiledGrammar grammar, GenerationStats stats) {
        SpeculativeDecoder decoder = new SpeculativeDecoder(models);
        int width = models.target().logitsWidth();
        long[] counts = new long[width * width];
        for (int seed = 0; seed < RUNS; seed++) {
            SamplingParams seeded = new SamplingParams(params.temperature(), params.topK(), params.topP(), (long) seed);
            GenerationResult result = decoder.generate(GenerationRequest.builder(prompt)
                .sampling(seeded)
                .maxNewTokens(maxNewTokens)
                .ignoreEos(grammar == null)
                .policy(policy)
                .penalties(penalties)
                .grammar(grammar)
                .build());
            int[] ids = result.tokenIds();
            counts[ids[0] * width + ids[1]]++;
            stats.add(result.stats());
        }
        return counts;
    }

    /**
     * P(x1, x2) = P(x1) · P(x2 | x1) from the target's logits, under the same temperature
     * and top-p.
     */
    private record Exact(double[] joint, int width) {
    }

    private static Exact exactDistribution(DecoderModel model, SamplingParams params) throws Exception {
        return exactDistribution(model, params, PROMPT);
    }

    private static Exact exactDistribution(DecoderModel model, SamplingParams params, int[] prompt) throws Exception {
        return exactDistribution(model, params, prompt, TokenPenalties.NONE);
    }

    /**
     * As above, each row penalized by the textbook formulas: bias, repetition over prompt
     * and output, frequency and presence over the output (here: x1).
     */
    private static Exact exactDistribution(DecoderModel model, SamplingParams params, int[] prompt,
            TokenPenalties penalties) throws Exception {
        int width = model.logitsWidth();
        double[] joint = new double[width * width];
        float[] first;
        try (KvSequence cache = model.newCache()) {
            StepOutput out = model.forward(new StepInput(cache, prompt, 1, false, null));
            first = Distributions.sampling(penalize(out.logits(), width, prompt, -1, penalties), 0, width, params);
        }
        for (int x1 = 0; x1 < width; x1++) {
            if (first[x1] == 0) {
                continue;
            }
            int[] extended = java.util.Arrays.copyOf(prompt, prompt.length + 1);
            extended[prompt.length] = x1;
            try (KvSequence cache = model.newCache()) {
                StepOutput out = model.forward(new StepInput(cache, extended, 1, false, null));
                float[] second = Distributions.sampling(penalize(out.logits(), width, prompt, x1, penalties), 0, width,
                        params);
                for (int x2 = 0; x2 < width; x2++) {
                    joint[x1 * width + x2] = (double) first[x1] * second[x2];
                }
            }
        }
        return new Exact(joint, width);
    }

    private static long[] firstTokens(long[] jointCounts, int width) {
        long[] marginal = new long[width];
        for (int i = 0; i < jointCounts.length; i++) {
            marginal[i / width] += jointCounts[i];
        }
        return marginal;
    }

    private static double[] firstTokens(double[] joint, int width) {
        double[] marginal = new double[width];
        for (int i = 0; i < joint.length; i++) {
            marginal[i / width] += joint[i];
        }
        return marginal;
    }

    /**
     * The first row of {@code logits}, penalized; {@code output}: the one output token,
     * or -1.
     */
    private static float[] penalize(float[] logits, int width, int[] prompt, int output, TokenPenalties penalties) {
        float[] row = java.util.Arrays.copyOf(logits, width);
        penalties.logitBias().forEach((token, bias) -> row[token] += bias.floatValue());
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int token : prompt) {
            seen.add(token);
        }
        if (output >= 0) {
            seen.add(output);
        }
        float repetition = (float) penalties.repetitionPenalty();
        for (int token : seen) {
            row[token] = row[token] > 0 ? row[token] / repetition : row[token] * repetition;
        }
        if (output >= 0) {
            row[output] -= (float) penalties.frequencyPenalty() + (float) penalties.presencePenalty();
        }
        return row;
    }

}
