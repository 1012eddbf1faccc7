import {describe, expect, it} from 'vitest';
import {
  compressionOfMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isNondistributable,
  layerMediaType,
  MediaType,
  toDockerMediaType,
  toOciMediaType,
} from '../../src/model/media-types.js';

/** The OCI ↔ Docker schema2 table of docs/formats.md §3 (containers/image's mapping), spelled out here. */
const TABLE: Array<[oci: string, docker: string]> = [
  ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'],
  ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'],
  ['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'],
  ['application/vnd.oci.image.layer.v1.tar', 'application/vnd.docker.image.rootfs.diff.tar'],
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.docker.image.rootfs.foreign.diff.tar'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'],
];

describe('OCI ↔ Docker media types', () => {
  it.each(TABLE)('%s ↔ %s', (oci, docker) => {
    expect(toDockerMediaType(oci)).toBe(docker);
    expect(toOciMediaType(docker)).toBe(oci);
    // already in the target vocabulary: unchanged
    expect(toDockerMediaType(docker)).toBe(docker);
    expect(toOciMediaType(oci)).toBe(oci);
  });

  it('zstd layers have no Docker type: conversion refused', () => {
    expect(toDockerMediaType('application/vnd.oci.image.layer.v1.tar+zstd')).toBeUndefined();
    expect(toDockerMediaType('application/vnd.oci.image.layer.nondistributable.v1.tar+zstd')).toBeUndefined();
  });

  it('types outside the table are not invented', () => {
    expect(toDockerMediaType('application/vnd.oci.empty.v1+json')).toBeUndefined();
    expect(toOciMediaType('application/vnd.example.thing')).toBe('application/vnd.example.thing');
  });

  it('the constants spell the spec names', () => {
    expect(Object.values(MediaType)).toEqual(expect.arrayContaining([...TABLE.flat(), 'application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.empty.v1+json']));
  });
});

describe('classification', () => {
  it('index and manifest types, both vocabularies', () => {
    expect(isIndexMediaType(TABLE[0]![0])).toBe(true);
    expect(isIndexMediaType(TABLE[0]![1])).toBe(true);
    expect(isManifestMediaType(TABLE[1]![0])).toBe(true);
    expect(isManifestMediaType(TABLE[1]![1])).toBe(true);
    expect(isIndexMediaType(TABLE[1]![0])).toBe(false);
    expect(isManifestMediaType(TABLE[2]![0])).toBe(false);
    expect(isIndexMediaType(undefined)).toBe(false);
  });

  it('non-distributable / foreign layers', () => {
    expect(TABLE.slice(5).flat().every(isNondistributable)).toBe(true);
    expect(TABLE.slice(0, 5).flat().some(isNondistributable)).toBe(false);
  });

  it.each([
    ['application/vnd.oci.image.layer.v1.tar', 'none'],
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
    ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
    ['application/vnd.oci.image.config.v1+json', undefined],
  ])('%s announces %s', (mediaType, compression) => {
    expect(compressionOfMediaType(mediaType)).toBe(compression);
  });

  it('layerMediaType per compression and vocabulary', () => {
    expect(layerMediaType('none', 'oci')).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(layerMediaType('gzip', 'oci')).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    expect(layerMediaType('zstd', 'oci')).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(layerMediaType('none', 'docker')).toBe('application/vnd.docker.image.rootfs.diff.tar');
    expect(layerMediaType('gzip', 'docker')).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });
});
