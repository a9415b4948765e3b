package dev.specula.chat;

import java.util.ArrayList;
import java.util.List;

import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.content.MediaContent;

import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.ChatMessage;
import dev.specula.tokenizer.ToolCall;

/**
 * Spring AI's messages as chat-template turns: system, user and assistant text, an
 * assistant's tool calls, and one {@code tool} turn per response of a
 * {@link ToolResponseMessage}. Missing text is empty text (an assistant message that only
 * calls tools reaches the template with content {@code ""}: Qwen3's template, for one,
 * fails on none). Media is refused: Specula's models read text only.
 */
final class ChatMessages {

    private ChatMessages() {
    }

    /**
     * The turns of {@code instructions}.
     * @throws InvalidRequestException naming {@code messages} when there is none,
     * {@code media} for a message with media, {@code messages[i].<field>} for a bad tool
     * call or tool response
     */
    static List<ChatMessage> of(List<Message> instructions) {
        if (instructions.isEmpty()) {
            throw new InvalidRequestException("messages", "The prompt has no messages");
        }
        List<ChatMessage> turns = new ArrayList<>(instructions.size());
        for (int i = 0; i < instructions.size(); i++) {
            Message message = instructions.get(i);
            if (message instanceof MediaContent withMedia && !withMedia.getMedia().isEmpty()) {
                throw new InvalidRequestException("media", "unsupported_value",
                        "Message " + i + " (" + message.getMessageType().getValue() + ") carries "
                                + withMedia.getMedia().size()
                                + " media: Specula's models read text only; send the content as text");
            }
            try {
                add(message, turns);
            }
            catch (InvalidRequestException ex) {
                throw new InvalidRequestException("messages[" + i + "]." + ex.getField(), ex.getCode(),
                        ex.getMessage());
            }
        }
        return turns;
    }

    private static void add(Message message, List<ChatMessage> turns) {
        String text = message.getText() == null ? "" : message.getText();
        switch (message.getMessageType()) {
            case SYSTEM -> turns.add(ChatMessage.system(text));
            case USER -> turns.add(ChatMessage.user(text));
            case ASSISTANT -> {
                if (message instanceof AssistantMessage assistant && assistant.hasToolCalls()) {
                    List<ToolCall> calls = new ArrayList<>();
                    for (AssistantMessage.ToolCall call : assistant.getToolCalls()) {
                        calls.add(new ToolCall(call.id(), call.name(), argumentsOf(call)));
                    }
                    turns.add(ChatMessage.assistant(text, calls));
                }
                else {
                    turns.add(ChatMessage.assistant(text));
                }
            }
            case TOOL -> {
                if (!(message instanceof ToolResponseMessage responses)) {
                    throw new InvalidRequestException("toolResponses",
                            "A tool message must be a ToolResponseMessage (the ids of the calls it answers)");
                }
                for (ToolResponseMessage.ToolResponse response : responses.getResponses()) {
                    turns.add(ChatMessage.tool(response.id(), response.name(),
                            response.responseData() == null ? "" : response.responseData()));
                }
            }
        }
    }

    /** A call's arguments; none given (null or blank) is an empty object. */
    private static String argumentsOf(AssistantMessage.ToolCall call) {
        return call.arguments() == null || call.arguments().isBlank() ? "{}" : call.arguments();
    }

    /**
     * Characters of text in {@code instructions}: message text, tool-call arguments and
     * tool responses.
     */
    static long characters(List<Message> instructions) {
        long characters = 0;
        for (Message message : instructions) {
            characters += message.getText() == null ? 0 : message.getText().length();
            if (message instanceof AssistantMessage assistant) {
                for (AssistantMessage.ToolCall call : assistant.getToolCalls()) {
                    characters += call.arguments() == null ? 0 : call.arguments().length();
                }
            }
            if (message instanceof ToolResponseMessage responses) {
                for (ToolResponseMessage.ToolResponse response : responses.getResponses()) {
                    characters += response.responseData() == null ? 0 : response.responseData().length();
                }
            }
        }
        return characters;
    }

}
