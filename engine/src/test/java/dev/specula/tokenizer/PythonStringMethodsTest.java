package dev.specula.tokenizer;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Python's string methods in templates: the rewrite to filters, and Python's semantics
 * where Java's differ (split keeps empty parts, strip takes a set of characters).
 */
class PythonStringMethodsTest {

    @Test
    void callsOnChainsBecomeFiltersInnermostFirst() {
        assertThat(PythonStringMethods.rewrite("{%- set c = message.content.split('</think>')[-1].lstrip('\\n') %}"))
            .isEqualTo("{%- set c = ((message.content|py_split('</think>'))[-1]|py_lstrip('\\n')) %}");
        assertThat(
                PythonStringMethods.rewrite("{% if not(m.content.startswith('<a>') and m.content.endswith('</a>')) %}"))
            .isEqualTo("{% if not((m.content|py_startswith('<a>')) and (m.content|py_endswith('</a>'))) %}");
        assertThat(PythonStringMethods.rewrite("{{ x.strip() }}")).isEqualTo("{{ (x|py_strip) }}");
    }

    @Test
    void rendersWithPythonsSemantics() {
        ChatTemplate template = new ChatTemplate(
                "{{ messages[0].content.split(',')|length }}|{{ messages[0].content.strip(',a') }}|"
                        + "{{ messages[0].content.split(',')[-1] }}|{{ messages[0].content.startswith('a,') }}",
                null, null);
        String rendered = template.renderMessages(List.of(Map.of("role", "user", "content", "a,b,,")), false, Map.of());
        assertThat(rendered).isEqualTo("4|b||true");
    }

}
