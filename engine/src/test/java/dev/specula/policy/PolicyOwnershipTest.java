package dev.specula.policy;

import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Policies keep no JVM-wide state: what the sequences of one owner share (goodput
 * estimates) is held by the owner's {@link PolicyResources}, and a bad option or γ is
 * reported as fields, not only as a message.
 */
class PolicyOwnershipTest {

    private static final RoundContext CONTEXT = new RoundContext(0, 100, 1, null);

    @Test
    void twoOwnersOfTheSameModelDoNotShareGoodputEstimates(@TempDir Path model) {
        PolicyParameters parameters = PolicyParameters.ofGamma(4).withModelDirectory(model);
        GoodputPolicy first = (GoodputPolicy) SpeculationPolicies.factory("goodput", parameters).get();
        for (int round = 0; round < 40; round++) {
            int gamma = first.draftLength(CONTEXT);
            first.observe(new RoundOutcome(gamma, gamma, gamma, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
        }
        assertThat(first.draftLength(CONTEXT)).isEqualTo(12);

        // another service (another factory) over the same directory starts from nothing
        // measured: γ, then γ − 1
        GoodputPolicy other = (GoodputPolicy) SpeculationPolicies.factory("goodput", parameters).get();
        assertThat(other.draftLength(CONTEXT)).as("first round of an owner that measured nothing").isEqualTo(4);
    }

    @Test
    void sequencesOfOneOwnerShareItsEstimatesUntilItCloses(@TempDir Path model) {
        try (PolicyResources resources = new PolicyResources()) {
            PolicyParameters parameters = PolicyParameters.ofGamma(4)
                .withModelDirectory(model)
                .withResources(resources);
            GoodputPolicy first = (GoodputPolicy) SpeculationPolicies.factory("goodput", parameters).get();
            for (int round = 0; round < 40; round++) {
                int gamma = first.draftLength(CONTEXT);
                first.observe(new RoundOutcome(gamma, gamma, gamma, gamma * 200_000L, 3_000_000L + gamma * 250_000L));
            }
            GoodputPolicy second = (GoodputPolicy) SpeculationPolicies.factory("goodput", parameters).get();
            assertThat(second.draftLength(CONTEXT)).as("the owner's prior, no warm-up").isEqualTo(12);
            resources.close();
            assertThatThrownBy(() -> SpeculationPolicies.factory("goodput", parameters))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        }
    }

    @Test
    void aBadOptionIsReportedAsFields() {
        assertThatThrownBy(
                () -> SpeculationPolicies.factory("confidence", new PolicyParameters(4, Map.of("threshold", "1.5"))))
            .isInstanceOfSatisfying(InvalidPolicyOptionException.class, (ex) -> {
                assertThat(ex.policy()).isEqualTo("confidence");
                assertThat(ex.option()).isEqualTo("threshold");
                assertThat(ex.value()).isEqualTo("1.5");
                assertThat(ex.allowed()).isEqualTo("in [0.0, 1.0]");
            })
            .hasMessage("Option 'threshold' of policy 'confidence' must be in [0.0, 1.0] but was 1.5");
        assertThatThrownBy(
                () -> SpeculationPolicies.factory("hf-heuristic", new PolicyParameters(4, Map.of("max", "x"))))
            .isInstanceOfSatisfying(InvalidPolicyOptionException.class,
                    (ex) -> assertThat(ex.option()).isEqualTo("max"));
        assertThatThrownBy(
                () -> SpeculationPolicies.factory("gammatune", new PolicyParameters(3, Map.of("min", "6", "max", "4"))))
            .isInstanceOfSatisfying(InvalidPolicyOptionException.class,
                    (ex) -> assertThat(ex.option()).isEqualTo("min"));
    }

    @Test
    void aBadGammaIsReportedAsTheGammaOption() {
        for (String policy : new String[] { "fixed", "hf-heuristic", "goodput", "confidence" }) {
            assertThatThrownBy(() -> SpeculationPolicies.factory(policy, PolicyParameters.ofGamma(0))).as(policy)
                .isInstanceOfSatisfying(InvalidPolicyOptionException.class, (ex) -> {
                    assertThat(ex.option()).isEqualTo(InvalidPolicyOptionException.GAMMA);
                    assertThat(ex.value()).isEqualTo("0");
                });
        }
        assertThatThrownBy(() -> SpeculationPolicies.factory("fixed:x", PolicyParameters.ofGamma(4)))
            .isInstanceOfSatisfying(InvalidPolicyOptionException.class, (ex) -> {
                assertThat(ex.option()).isEqualTo(InvalidPolicyOptionException.GAMMA);
                assertThat(ex.value()).isEqualTo("x");
            });
    }

    @Test
    void theNameColonGammaSyntaxIsParsedInOnePlace() {
        assertThat(PolicySpec.parse(" fixed : 5 ")).isEqualTo(new PolicySpec("fixed", 5));
        assertThat(PolicySpec.parse("goodput")).isEqualTo(new PolicySpec("goodput", null));
        assertThatThrownBy(() -> SpeculationPolicies.requireKnown("fastest:3"))
            .isInstanceOf(UnknownPolicyException.class)
            .hasMessageContaining("'fastest'");
        // requireKnown checks the name only; the γ part is checked where the policy is
        // created
        SpeculationPolicies.requireKnown("fixed:x");
        assertThatThrownBy(() -> PolicySpec.parse("fixed:x")).isInstanceOf(InvalidPolicyOptionException.class);
    }

}
