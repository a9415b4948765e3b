package dev.specula.autoconfigure;

import dev.specula.autoconfigure.diagnostics.InvalidSpeculaPropertyFailureAnalyzer;
import dev.specula.policy.UnknownPolicyException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Values out of range stop startup naming the property, the value and the range. The properties are checked
 * before any model loads, so these contexts are cheap.
 */
class SpeculaPropertiesValidationTests {

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(SpeculaAutoConfiguration.class));

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|', textBlock = """
            specula.policy.gamma                                 | 0     | 0      | an integer from 1 to 64
            specula.policy.gamma                                 | 65    | 65     | an integer from 1 to 64
            specula.policy.name                                  | fixed:0 | fixed:0 | gamma an integer from 1 to 64
            specula.policy.name                                  | fixed:x | fixed:x | gamma an integer from 1 to 64
            specula.chat.options.max-tokens                      | -1    | -1     | an integer >= 1
            specula.chat.options.temperature                     | -0.1  | -0.1   | a number >= 0
            specula.chat.options.top-p                           | 0     | 0.0    | (0, 1]
            specula.chat.options.top-p                           | 1.5   | 1.5    | (0, 1]
            specula.chat.options.top-k                           | -2    | -2     | an integer >= 0
            specula.cache.maximum-size                           | -1    | -1     | an integer >= 0
            specula.cache.time-to-live                           | 0s    | 0s     | a positive duration
            specula.resilience.max-concurrent-generations        | 0     | 0      | an integer >= 1
            specula.resilience.round-timeout                     | 0ms   | 0s     | a positive duration
            specula.resilience.round-timeout                     | -5s   | -5s    | a positive duration
            specula.resilience.round-timeout                     | -1500ms | -1500ms | a positive duration
            specula.resilience.max-wait-for-slot                 | -1s   | -1s    | a duration >= 0
            specula.resilience.failure-rate-threshold            | 0     | 0.0    | (0, 100]
            specula.resilience.failure-rate-threshold            | 101   | 101.0  | (0, 100]
            specula.resilience.sliding-window-size               | 0     | 0      | an integer >= 1
            specula.resilience.minimum-number-of-calls           | 0     | 0      | an integer >= 1
            specula.resilience.wait-duration-in-open-state       | 0s    | 0s     | at least 1ms
            specula.resilience.goodput.probe-interval            | 0     | 0      | an integer >= 1
            specula.resilience.goodput.min-tokens                | 0     | 0      | an integer >= 1
            specula.resilience.goodput.wait-duration-in-open-state | 0s  | 0s     | at least 1ms
            specula.runtime.intra-op-threads                     | -1    | -1     | an integer >= 0
            specula.runtime.device-id                            | -1    | -1     | an integer >= 0
            specula.scheduler.stream-threads                     | -1    | -1     | an integer >= 0
            """)
    void outOfRangeValueStopsStartup(String property, String value, String shownValue, String allowed) {
        runner.withPropertyValues(property + "=" + value).run(context -> {
            assertThat(context).hasFailed();
            InvalidSpeculaPropertyException cause = findCause(context.getStartupFailure(), InvalidSpeculaPropertyException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getProperty()).isEqualTo(property);
            assertThat(String.valueOf(cause.getValue())).isEqualTo(shownValue);
            assertThat(cause.getAllowed()).contains(allowed);

            FailureAnalysis analysis = new InvalidSpeculaPropertyFailureAnalyzer().analyze(context.getStartupFailure());
            assertThat(analysis.getDescription()).contains("Property: " + property, "Value: " + shownValue, allowed);
            assertThat(analysis.getAction()).contains("Set " + property + " to ");
        });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            specula.draft.location=/models/draft          | specula.target.location
            specula.target.location=                      | specula.target.location
            specula.model-name=                           | specula.model-name
            specula.policy.name=                          | specula.policy.name
            specula.chat.options.stop-sequences[0]=       | specula.chat.options.stop-sequences[0]
            """)
    void inconsistentOrBlankValuesStopStartup(String setting, String property) {
        runner.withPropertyValues(setting).run(context -> {
            assertThat(context).hasFailed();
            InvalidSpeculaPropertyException cause = findCause(context.getStartupFailure(), InvalidSpeculaPropertyException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getProperty()).isEqualTo(property);
        });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"nope", "Fixed", "nope:4"})
    void unknownPolicyStopsStartup(String name) {
        runner.withPropertyValues("specula.policy.name=" + name).run(context -> {
            assertThat(context).hasFailed();
            assertThat(findCause(context.getStartupFailure(), UnknownPolicyException.class)).isNotNull();
        });
    }

    static <T extends Throwable> T findCause(Throwable failure, Class<T> type) {
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            if (type.isInstance(cause)) {
                return type.cast(cause);
            }
        }
        return null;
    }
}
