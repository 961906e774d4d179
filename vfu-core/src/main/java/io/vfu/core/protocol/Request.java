package io.vfu.core.protocol;

/**
 * The payload of a command (client→server, or server→client for DMA_READ/DMA_WRITE).
 * Each command has one record implementing this interface; {@link Messages#decodeRequest} decodes any.
 */
public non-sealed interface Request extends Payload {
}
