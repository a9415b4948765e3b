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

}
