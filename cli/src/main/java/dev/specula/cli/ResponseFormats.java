package dev.specula.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.ModelPair;
import dev.specula.grammar.CompiledGrammar;
import dev.specula.grammar.Grammar;
import dev.specula.grammar.TokenVocabulary;
import dev.specula.request.InvalidRequestException;

/**
 * {@code --response-format json|SCHEMA.json}: the grammar the output must match (any JSON
 * object, or a JSON Schema read from a file), compiled for the target's vocabulary.
 */
final class ResponseFormats {

    static final String JSON_OBJECT = "json";

    private ResponseFormats() {
    }

    /** The option's grammar; null when the option is absent. */
    static @Nullable CompiledGrammar grammar(@Nullable String option, ModelPair models) throws IOException {
        if (option == null) {
            return null;
        }
        Grammar grammar;
        try {
            if (option.equals(JSON_OBJECT)) {
                grammar = Grammar.jsonObject();
            }
            else {
                grammar = Grammar.jsonSchema(Files.readString(Path.of(option)));
            }
        }
        catch (NoSuchFileException ex) {
            throw new CliException("--response-format: no file " + option
                    + " (give \"json\" for any JSON object, or a JSON Schema file)");
        }
        catch (InvalidRequestException ex) {
            throw new CliException("--response-format " + option + ": " + ex.getMessage());
        }
        int[] endIds = models.target().config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
        return CompiledGrammar.compile(grammar, TokenVocabulary.read(models.target().tokenizer().file()), endIds);
    }

}
