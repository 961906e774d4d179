package io.vfu.core.protocol;

/**
 * The payload of a success reply. Each command has one record implementing this interface;
 * {@link Messages#decodeReply} decodes any. Error replies carry no payload (see {@link Header#FLAG_ERROR}).
 */
public non-sealed interface Reply extends Payload {
}
