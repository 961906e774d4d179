/**
 * Decoding of PCI configuration space as read from a device's config region (vfio-user region 7):
 * {@link io.vfu.client.pci.PciConfig}.
 */
package io.vfu.client.pci;
