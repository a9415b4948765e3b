package dev.specula.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.jspecify.annotations.Nullable;

import dev.specula.sampling.SamplingParams;

/**
 * {@code --name value} and {@code --flag} options of one sub-command; unknown or repeated
 * options are errors.
 */
final class Arguments {

    private final String command;

    private final Map<String, List<String>> values = new LinkedHashMap<>();

    private Arguments(String command) {
        this.command = command;
    }

    /**
     * The options a command knows.
     * @param valued options that take a value
     * @param flags options without a value
     * @param repeatable valued options that may appear more than once
     */
    static Arguments parse(String command, String[] args, int from, Set<String> valued, Set<String> flags,
            Set<String> repeatable) {
        Arguments parsed = new Arguments(command);
        for (int i = from; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--")) {
                throw new CliException(command + ": unexpected argument '" + arg + "' (options start with --)");
            }
            String name = arg.substring(2);
            String value = null;
            int equals = name.indexOf('=');
            if (equals >= 0) {
                value = name.substring(equals + 1);
                name = name.substring(0, equals);
            }
            if (flags.contains(name)) {
                if (value != null) {
                    throw new CliException(command + ": --" + name + " takes no value");
                }
                value = "true";
            }
            else if (valued.contains(name)) {
                if (value == null) {
                    if (i + 1 >= args.length) {
                        throw new CliException(command + ": --" + name + " needs a value");
                    }
                    value = args[++i];
                }
            }
            else {
                throw new CliException(command + ": unknown option --" + name);
            }
            List<String> list = parsed.values.computeIfAbsent(name, (key) -> new ArrayList<>());
            if (!list.isEmpty() && !repeatable.contains(name)) {
                throw new CliException(command + ": --" + name + " given twice");
            }
            list.add(value);
        }
        return parsed;
    }

    boolean has(String name) {
        return values.containsKey(name);
    }

    @Nullable String string(String name, @Nullable String defaultValue) {
        List<String> list = values.get(name);
        return list == null ? defaultValue : list.get(0);
    }

    List<String> all(String name) {
        return values.getOrDefault(name, List.of());
    }

    int integer(String name, int defaultValue, int min, int max) {
        String raw = string(name, null);
        if (raw == null) {
            return defaultValue;
        }
        try {
            int value = Integer.parseInt(raw.trim());
            if (value < min || value > max) {
                throw new CliException(
                        command + ": --" + name + " must be in [" + min + ", " + max + "] but was " + value);
            }
            return value;
        }
        catch (NumberFormatException ex) {
            throw new CliException(command + ": --" + name + " must be an integer but was '" + raw + "'");
        }
    }

    double number(String name, double defaultValue) {
        String raw = string(name, null);
        if (raw == null) {
            return defaultValue;
        }
        try {
            return Double.parseDouble(raw.trim());
        }
        catch (NumberFormatException ex) {
            throw new CliException(command + ": --" + name + " must be a number but was '" + raw + "'");
        }
    }

    /** {@code --temperature 0 --top-k 0 --top-p 1 --seed N}, validated. */
    SamplingParams sampling() {
        try {
            return new SamplingParams(number("temperature", 0), integer("top-k", 0, 0, Integer.MAX_VALUE),
                    number("top-p", 1), optionalLong("seed"));
        }
        catch (dev.specula.request.InvalidRequestException ex) {
            throw new CliException(command + ": " + ex.getMessage());
        }
    }

    @Nullable Long optionalLong(String name) {
        String raw = string(name, null);
        if (raw == null) {
            return null;
        }
        try {
            return Long.parseLong(raw.trim());
        }
        catch (NumberFormatException ex) {
            throw new CliException(command + ": --" + name + " must be an integer but was '" + raw + "'");
        }
    }

}
