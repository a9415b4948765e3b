package dev.specula.tokenizer;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Expected strings are what Python's json.dumps(x, ensure_ascii=False[, indent=2])
 * prints.
 */
class PythonJsonTest {

    @Test
    void writesLikePythonsJsonDumps() {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("name", "get_weather");
        value.put("args", List.of(1, 2.5, true, "é\n\"q\""));
        value.put("none", null);
        value.put("empty", Map.of());
        assertThat(PythonJson.dumps(value, null)).isEqualTo(
                "{\"name\": \"get_weather\", \"args\": [1, 2.5, true, \"é\\n\\\"q\\\"\"], \"none\": null, \"empty\": {}}");
    }

    @Test
    void indents() {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("a", List.of(1, 2));
        assertThat(PythonJson.dumps(value, 2)).isEqualTo("{\n  \"a\": [\n    1,\n    2\n  ]\n}");
    }

    @Test
    void wholeFloatsKeepTheirPoint() {
        assertThat(PythonJson.dumps(List.of(1.0, 0.5), null)).isEqualTo("[1.0, 0.5]");
    }

    /**
     * {@code json.dumps([1e-05, 1.5, 1e16, 1.2345e+20, 123456789012345.0, 1e15, 0.0001,
     * 2.5e-7, -0.0, 100.0, 1.7976931348623157e308, 5e-324, -3.25])}: tool-call arguments
     * reach templates as parsed numbers.
     */
    @Test
    void floatsAreWrittenAsPythonsRepr() {
        assertThat(PythonJson.dumps(List.of(1e-05, 1.5, 1e16, 1.2345e+20, 123456789012345.0, 1e15, 0.0001, 2.5e-7, -0.0,
                100.0, 1.7976931348623157e308, 5e-324, -3.25), null))
            .isEqualTo("[1e-05, 1.5, 1e+16, 1.2345e+20, 123456789012345.0, 1000000000000000.0, 0.0001, 2.5e-07, "
                    + "-0.0, 100.0, 1.7976931348623157e+308, 5e-324, -3.25]");
    }

}
