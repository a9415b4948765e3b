package dev.specula.policy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Each adaptive policy's update rule driven by scripted rounds: the γ trajectory must be
 * the one its rule (as written in the policy's Javadoc, from the paper) gives.
 */
class PolicyRulesTest {

    private static final RoundContext CONTEXT = new RoundContext(10, 100, 42, null);

    /**
     * Rounds of (drafted, accepted); γ asked before each round, then the outcome is
     * observed.
     */
    private static List<Integer> trajectory(SpeculationPolicy policy, int[][] rounds) {
        List<Integer> gammas = new ArrayList<>();
        for (int[] round : rounds) {
            int gamma = policy.draftLength(CONTEXT);
            gammas.add(gamma);
            int drafted = Math.min(gamma, round[0]);
            policy.observe(new RoundOutcome(gamma, drafted, Math.min(drafted, round[1]), 1_000_000, 3_000_000));
        }
        gammas.add(policy.draftLength(CONTEXT));
        return gammas;
    }

    private static int[] all(int n) {
        return new int[] { n, n };
    }

    /** A draft distribution over 4 tokens with the given probabilities, as logits. */
    private static DraftCandidate candidate(int index, double... probabilities) {
        float[] logits = new float[probabilities.length];
        for (int i = 0; i < probabilities.length; i++) {
            logits[i] = (float) Math.log(probabilities[i]);
        }
        return new DraftCandidate(index, 0, logits, 0, logits.length, 0);
    }

    @Test
    void hfHeuristicAddsTwoOnFullAcceptanceAndRemovesOneOtherwise() {
        SpeculationPolicy policy = SpeculationPolicies
            .factory("hf-heuristic", new PolicyParameters(5, Map.of("max", "9")))
            .get();
        // 5 all → 7 all → 9 all → 9 (cap) partial → 8 none → 7 ... → 1 floor
        List<Integer> gammas = trajectory(policy, new int[][] { all(64), all(64), all(64), { 64, 3 }, { 64, 0 },
                { 64, 1 }, { 64, 0 }, { 64, 0 }, { 64, 0 }, { 64, 0 }, { 64, 0 }, { 64, 0 }, { 64, 0 } });
        assertThat(gammas).containsExactly(5, 7, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 1);
    }

    @Test
    void gammaTuneJumpsOnFullAcceptanceAndSmoothsOtherwise() {
        SpeculationPolicy policy = SpeculationPolicies.factory("gammatune", new PolicyParameters(3, Map.of())).get();
        // start 3; 3/3 → clip(3+2)=5, γ̄=5; A=2 → γ̄=0.7·5+0.3·2=4.1 → ⌈4.1⌉=5; A=0 →
        // γ̄=2.87 → 3;
        // 3/3 → 5; 5/5 → 7; 7/7 → 9; 9/9 → clip(11)=10; A=1 → γ̄=0.7·10+0.3=7.3 → 8
        List<Integer> gammas = trajectory(policy,
                new int[][] { all(64), { 64, 2 }, { 64, 0 }, all(64), all(64), all(64), all(64), { 64, 1 } });
        assertThat(gammas).containsExactly(3, 5, 5, 3, 5, 7, 9, 10, 8);
    }

    @Test
    void gammaTuneOptionsAreValidated() {
        assertThatThrownBy(
                () -> SpeculationPolicies.factory("gammatune", new PolicyParameters(3, Map.of("eta", "1.5"))))
            .hasMessageContaining("eta")
            .hasMessageContaining("[0.0, 1.0]");
        assertThatThrownBy(
                () -> SpeculationPolicies.factory("gammatune", new PolicyParameters(3, Map.of("min", "6", "max", "4"))))
            .hasMessageContaining("Option 'min' of policy 'gammatune' must be <= max (4) but was 6");
    }

    @Test
    void gammaTunePlusAlsoStopsWhenTheDraftIsUnsure() {
        SpeculationPolicy plus = SpeculationPolicies
            .factory("gammatune-plus", new PolicyParameters(3, Map.of("tau", "0.5")))
            .get();
        SpeculationPolicy plain = SpeculationPolicies.factory("gammatune", new PolicyParameters(3, Map.of())).get();
        assertThat(plus.shouldPropose(candidate(1, 0.6, 0.2, 0.1, 0.1))).isTrue();
        assertThat(plus.shouldPropose(candidate(1, 0.4, 0.3, 0.2, 0.1))).isFalse();
        assertThat(plain.shouldPropose(candidate(1, 0.4, 0.3, 0.2, 0.1))).isTrue();
        // the length rule is GammaTune's: a round stopped early by τ is a partial round
        assertThat(trajectory(plus, new int[][] { all(64), { 2, 2 } })).containsExactly(3, 5, 5);
    }

    @Test
    void confidenceStopsBelowTheThreshold() {
        SpeculationPolicy policy = SpeculationPolicies
            .factory("confidence", new PolicyParameters(8, Map.of("threshold", "0.7")))
            .get();
        assertThat(policy.draftLength(CONTEXT)).isEqualTo(8);
        assertThat(policy.shouldPropose(candidate(0, 0.71, 0.09, 0.1, 0.1))).isTrue();
        assertThat(policy.shouldPropose(candidate(0, 0.69, 0.11, 0.1, 0.1))).isFalse();
        assertThat(SpeculationPolicies.factory("confidence", PolicyParameters.ofGamma(8))
            .get()
            .shouldPropose(candidate(2, 0.74, 0.26, 0, 0))).as("default threshold 0.75 (llama.cpp)").isFalse();
    }

    @Test
    void adaEdlStopsOnTheEntropyBoundAndAdaptsLambda() {
        AdaEdlPolicy policy = (AdaEdlPolicy) SpeculationPolicies
            .factory("adaedl", new PolicyParameters(10, Map.of("lambda", "0.5")))
            .get();
        // H([0.97, 0.01, 0.01, 0.01]) = 0.168 nats → 1 − sqrt(0.2·0.168) = 0.817 ≥ 0.5:
        // propose
        assertThat(policy.shouldPropose(candidate(0, 0.97, 0.01, 0.01, 0.01))).isTrue();
        // uniform over 4: H = ln 4 = 1.386 → 1 − sqrt(0.277) = 0.473 < 0.5: stop
        assertThat(policy.shouldPropose(candidate(0, 0.25, 0.25, 0.25, 0.25))).isFalse();

        double lambda = 0.5;
        double ar = 1;
        int[][] rounds = { { 5, 2 }, { 5, 5 }, { 5, 5 }, { 10, 9 }, { 10, 10 } };
        for (int[] round : rounds) {
            policy.observe(new RoundOutcome(10, round[0], round[1], 1, 1));
            ar = 0.5 * ar + 0.5 * round[1] / round[0];
            double next = ar < 0.9 ? lambda + 0.01 : round[1] < round[0] ? lambda - 0.01 : lambda;
            lambda = 0.9 * lambda + 0.1 * next;
            assertThat(policy.lambda()).isCloseTo(lambda, within(1e-12));
        }
        // AR after the rounds: 0.7, 0.85, 0.925, 0.9125, 0.95625 → λ: +0.001, +0.001, ±0,
        // −0.001, ±0
        assertThat(policy.lambda()).isCloseTo(0.501, within(1e-12));
    }

    @Test
    void ldlpDraftsThePredictedLengthThenContinuesOnlyWhileTheDraftIsSure() {
        double[] prediction = { 2.4 };
        LdlpPolicy policy = new LdlpPolicy((hidden, token) -> prediction[0], 4, 10, -0.6);
        assertThat(policy.usesTargetHiddenState()).isTrue();
        // before the target produced a hidden state: the configured γ
        assertThat(policy.draftLength(new RoundContext(0, 100, 1, null))).isEqualTo(4);

        float[] hidden = new float[8];
        assertThat(policy.draftLength(new RoundContext(5, 100, 1, hidden))).isEqualTo(10);
        assertThat(policy.predicted()).isEqualTo(2);
        // positions 0, 1 < L̂ = 2: always; from position 2 only while Σ log q ≥ −0.6
        assertThat(policy.shouldPropose(candidate(1, 0.1, 0.3, 0.3, 0.3))).isTrue();
        // −0.3 + ln 0.9 = −0.41
        assertThat(policy.shouldPropose(new DraftCandidate(2, 0, logits(0.9, 0.1), 0, 2, -0.3))).isTrue();
        // −0.41 + ln 0.7 = −0.77
        assertThat(policy.shouldPropose(new DraftCandidate(3, 0, logits(0.7, 0.3), 0, 2, -0.41))).isFalse();

        prediction[0] = 37;
        policy.draftLength(new RoundContext(9, 100, 1, hidden));
        assertThat(policy.predicted()).as("clamped to γmax").isEqualTo(10);
        prediction[0] = -3;
        policy.draftLength(new RoundContext(9, 100, 1, hidden));
        assertThat(policy.predicted()).isZero();
    }

    @Test
    void ldlpWithoutItsFilesNamesThem(@org.junit.jupiter.api.io.TempDir Path directory) {
        assertThatThrownBy(
                () -> SpeculationPolicies.factory("ldlp", PolicyParameters.ofGamma(4).withModelDirectory(directory)))
            .hasMessageContaining("ldlp.onnx")
            .hasMessageContaining("train-ldlp");
    }

    @Test
    void goodputDraftsLongWhenDraftsLandAndStopsWhenTheyDoNot(@org.junit.jupiter.api.io.TempDir Path model) {
        PolicyParameters parameters = PolicyParameters.ofGamma(4).withModelDirectory(model);
        var factory = SpeculationPolicies.factory("goodput", parameters);
        GoodputPolicy learner = (GoodputPolicy) factory.get();
        // verification: 3 ms + 0.25 ms per draft, draft step 0.2 ms; every draft accepted
        List<Integer> gammas = new ArrayList<>();
        for (int round = 0; round < 40; round++) {
            int gamma = learner.draftLength(CONTEXT);
            gammas.add(gamma);
            learner.observe(new RoundOutcome(gamma, gamma, gamma, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
        }
        assertThat(gammas.subList(0, 2)).as("nothing measured yet: γ and γ − 1").containsExactly(4, 3);
        assertThat(gammas.get(39)).as("all accepted: the longest draft pays most").isEqualTo(12);

        // a new sequence of the same model and owner starts from what was measured (no
        // warm-up)
        GoodputPolicy second = (GoodputPolicy) factory.get();
        assertThat(second.draftLength(CONTEXT)).isEqualTo(12);
        // ... and learns that its own drafts fail: γ* falls to 0 (plain steps), with a
        // probe every 16 rounds
        List<Integer> failing = new ArrayList<>();
        for (int round = 0; round < 48; round++) {
            int gamma = second.draftLength(CONTEXT);
            failing.add(gamma);
            second.observe(new RoundOutcome(gamma, gamma, 0, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
        }
        // (its rounds 2..49: round 48, index 46, is a probe)
        assertThat(failing.subList(40, 46)).containsOnly(0);
        assertThat(failing.get(46)).as("round 16·k probes one draft").isEqualTo(1);
        assertThat(failing.get(47)).isZero();
    }

    @Test
    void goodputProbesLessOftenWhileItsProbesFailAndAgainOnceOneLands(@org.junit.jupiter.api.io.TempDir Path model) {
        var factory = SpeculationPolicies.factory("goodput", PolicyParameters.ofGamma(4).withModelDirectory(model));
        GoodputPolicy teacher = (GoodputPolicy) factory.get();
        // a draft that never lands, verification 3 ms + 0.25 ms a draft, a draft step
        // 0.2 ms: the shared estimates learn that plain steps pay
        for (int round = 0; round < 200; round++) {
            int gamma = teacher.draftLength(CONTEXT);
            teacher.observe(new RoundOutcome(gamma, gamma, 0, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
        }
        GoodputPolicy policy = (GoodputPolicy) factory.get();
        List<Integer> probes = new ArrayList<>();
        for (int round = 1; round <= 1200; round++) {
            int gamma = policy.draftLength(CONTEXT);
            if (gamma > 0) {
                probes.add(round);
            }
            // the probe from round 1000 on lands
            int accepted = round >= 1000 ? gamma : 0;
            policy.observe(new RoundOutcome(gamma, gamma, accepted, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
        }
        // (its first rounds may still draft: round 1 starts after a full acceptance, a
        // state
        // the teacher never reached, and its own counts start empty)
        assertThat(probes.stream().filter((round) -> round < 16).count()).isLessThanOrEqualTo(2);
        // each failed probe doubles the wait for the next, up to 4 times the option's 16
        List<Integer> failing = probes.stream().filter((round) -> round >= 16 && round < 1000).toList();
        assertThat(failing).startsWith(16, 48, 112, 176, 240).endsWith(880, 944).hasSize(16);
        // the probe after round 1000 lands: drafting resumes
        assertThat(probes.stream().filter((round) -> round > 1000).count()).isGreaterThan(100);
    }

    @Test
    void goodputProbesADraftWhoseProbesCostManyPlainStepsOnlyAsOftenAsItsBudgetAllows(
            @org.junit.jupiter.api.io.TempDir Path model) {
        var factory = SpeculationPolicies.factory("goodput", PolicyParameters.ofGamma(4).withModelDirectory(model));
        // a small target (0.3 ms a step, 0.025 ms a verified draft) and a draft that
        // never
        // lands (0.15 ms a step) and first catches up on every token since its last call
        // (0.6 ms + 0.002 ms a token): a probe costs 4 plain steps or more. An
        // earlier request learnt that plain steps pay, and what a probe costs
        CatchingUpDraft teacherDraft = new CatchingUpDraft();
        GoodputPolicy teacher = (GoodputPolicy) factory.get();
        for (int round = 0; round < 300; round++) {
            teacher.observe(teacherDraft.round(teacher.draftLength(CONTEXT)));
        }
        CatchingUpDraft draft = new CatchingUpDraft();
        GoodputPolicy policy = (GoodputPolicy) factory.get();
        List<Integer> probes = new ArrayList<>();
        double plainNanos = 0;
        double probeExtraNanos = 0;
        for (int round = 1; round <= 3000; round++) {
            int gamma = policy.draftLength(CONTEXT);
            RoundOutcome outcome = draft.round(gamma);
            policy.observe(outcome);
            if (gamma > 0 && round > 1) {
                probes.add(round);
                probeExtraNanos += outcome.roundNanos() - 300_000L;
            }
            else if (gamma == 0) {
                plainNanos += outcome.roundNanos();
            }
        }
        // round 1 may still draft (it starts after a full acceptance, a state the teacher
        // never reached); from then on the probes' extra time stays within 1/32 of the
        // plain steps' (within one probe), from the request's first probe on: about 3 x
        // 32 =
        // 90 rounds or more apart
        assertThat(probes).isNotEmpty().allMatch((round) -> round >= 90);
        for (int i = 1; i < probes.size(); i++) {
            assertThat(probes.get(i) - probes.get(i - 1)).isGreaterThanOrEqualTo(90);
        }
        assertThat(probeExtraNanos).isLessThanOrEqualTo(plainNanos / 32 + 4_000_000L);
    }

    /**
     * Round costs of a draft that never lands and catches up on every token since its
     * last call.
     */
    private static final class CatchingUpDraft {

        private int sinceDraft;

        RoundOutcome round(int gamma) {
            long draftNanos = gamma == 0 ? 0 : 150_000L * gamma + 600_000L + 2_000L * sinceDraft;
            sinceDraft = gamma == 0 ? sinceDraft + 1 : 0;
            return new RoundOutcome(gamma, gamma, 0, draftNanos, 300_000L + 25_000L * gamma);
        }

    }

    @Test
    void goodputKeepsEachProposersEstimatesApart(@org.junit.jupiter.api.io.TempDir Path model) {
        var factory = SpeculationPolicies.factory("goodput", PolicyParameters.ofGamma(4).withModelDirectory(model));
        RoundContext byModel = new RoundContext(0, 100, 7, null, "model");
        RoundContext byLookup = new RoundContext(0, 100, 7, null, "ngram");
        GoodputPolicy drafting = (GoodputPolicy) factory.get();
        // the draft model's drafts always fail: its requests fall to plain steps
        for (int round = 0; round < 40; round++) {
            int gamma = drafting.draftLength(byModel);
            drafting.observe(new RoundOutcome(gamma, gamma, 0, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
        }
        // a new model request starts from those measurements: shorter than the γ an
        // unmeasured policy starts with
        assertThat(((GoodputPolicy) factory.get()).draftLength(byModel)).isLessThan(4);
        // a lookup request of the same model and owner has measured nothing yet: it
        // starts
        // from γ, not from the draft model's failures
        assertThat(((GoodputPolicy) factory.get()).draftLength(byLookup)).isEqualTo(4);
    }

    @Test
    void goodputChoosesTheArgmaxOfExpectedTokensPerSecond(@org.junit.jupiter.api.io.TempDir Path model) {
        GoodputPolicy policy = (GoodputPolicy) SpeculationPolicies
            .factory("goodput", new PolicyParameters(4, Map.of("max", "12"), model))
            .get();
        // round time T(γ) = γ·0.2 + 3 + 0.25·γ ms; with the prior alone (α = 0.7
        // everywhere)
        double[] times = new double[13];
        for (int gamma = 0; gamma <= 12; gamma++) {
            times[gamma] = gamma * 0.2 + 3 + 0.25 * gamma;
        }
        int expected = 0;
        double best = 1 / times[0];
        double tokens = 1;
        double run = 1;
        for (int gamma = 1; gamma <= 12; gamma++) {
            run *= policy.acceptance(gamma - 1);
            tokens += run;
            if (tokens / times[gamma] > best) {
                best = tokens / times[gamma];
                expected = gamma;
            }
        }
        assertThat(policy.bestGamma(times)).isEqualTo(expected).isBetween(3, 8);
        // a draft as slow as the target never pays
        for (int gamma = 0; gamma <= 12; gamma++) {
            times[gamma] = 3 + gamma * 3.25;
        }
        assertThat(policy.bestGamma(times)).isZero();
    }

    private static float[] logits(double... probabilities) {
        float[] logits = new float[probabilities.length];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.log(probabilities[i]);
        }
        return logits;
    }

}
